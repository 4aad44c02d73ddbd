"""The /invocations answer as strict JSON: ``{"predictions": [{"mpg": 21.5}, ...]}``.

Encoded by msgspec straight from the answer's columns (no ``DataFrame.to_dict``). A float that
is not finite is written ``null`` (a failed row's ``mpg`` with ``errors="column"``), never
``NaN`` or ``Infinity``, which strict JSON parsers (JavaScript, Go, Java) refuse.
"""

from __future__ import annotations

import msgspec
import numpy as np
import pandas as pd


def _plain(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


_encode = msgspec.json.Encoder(enc_hook=_plain).encode


def column_values(column) -> list:
    """A column as plain Python values (NaN for missing floats, None for other missing)."""
    if isinstance(column, list):
        return column
    if isinstance(column, np.ndarray) and column.dtype.kind == "f":
        return column.tolist()
    column = pd.Series(column)
    if column.dtype.kind == "f":
        return column.to_numpy(dtype=np.float64).tolist()
    return column.to_numpy(dtype=object, na_value=None).tolist()


def encode_predictions(columns: dict) -> bytes:
    """``{"predictions": [...]}`` of the model's answer (columns: name -> values)."""
    names = list(columns)
    values = [column_values(v) for v in columns.values()]
    if len(names) == 1:
        (name,), (only,) = names, values
        rows = [{name: v} for v in only]
    else:
        rows = [dict(zip(names, row, strict=True)) for row in zip(*values, strict=True)]
    return _encode({"predictions": rows})


def encode(document: object) -> bytes:
    """Any other answer of the service, as strict JSON."""
    return _encode(document)
