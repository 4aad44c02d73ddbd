"""Contract formats 2 and 3 (carnn 83ddeb7..4f24a32): the fitted scaler in a joblib pickle.

Those models kept everything but the scaler in ``contract.json`` (the same layout the current
encoder makes) and the scikit-learn ``MinMaxScaler`` in ``scaler.joblib``. Its two fitted arrays
(``scale_``, ``min_``) are all the encoder needs; they are read with an unpickler that admits
only the scaler class (as a plain stand-in: scikit-learn is not imported), joblib's array
wrapper and NumPy's arrays and dtypes, so no other object in the file is ever built or run.
Needs joblib (installed with the training extra, as the Keras these models run on is).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

_SCALER = ("sklearn.preprocessing._data", "MinMaxScaler")


class _ScalerState:
    """What the pickled MinMaxScaler held: its attributes, nothing of its behaviour."""


def _admitted() -> dict[tuple[str, str], object]:
    from joblib.numpy_pickle import NumpyArrayWrapper

    return {
        _SCALER: _ScalerState,
        ("joblib.numpy_pickle", "NumpyArrayWrapper"): NumpyArrayWrapper,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }


def read_scaler(path: str | Path) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``(scale, shift)`` of the MinMaxScaler a contract format 2 or 3 model pickled: scaled =
    value * scale + shift, exactly what ``scale_`` and ``min_`` held."""
    from joblib.numpy_pickle import NumpyUnpickler

    admitted = _admitted()

    class Restricted(NumpyUnpickler):
        def find_class(self, module: str, name: str):
            try:
                return admitted[module, name]
            except KeyError:
                raise pickle.UnpicklingError(
                    f"{path}: {module}.{name} is not part of a fitted MinMaxScaler"
                ) from None

    with open(path, "rb") as handle:
        state = Restricted(str(path), handle, ensure_native_byte_order=True).load()
    if not isinstance(state, _ScalerState):
        raise ValueError(f"{path}: holds a {type(state).__name__}, not a MinMaxScaler")
    scale, shift = np.asarray(state.scale_, np.float64), np.asarray(state.min_, np.float64)
    if scale.shape != shift.shape or scale.ndim != 1:
        raise ValueError(f"{path}: the scaler's scale_ {scale.shape} and min_ {shift.shape}")
    return tuple(float(v) for v in scale), tuple(float(v) for v in shift)
