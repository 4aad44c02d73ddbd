"""The MLflow PythonModel: everything is loaded in ``load_context``; ``predict`` only computes.

Logged as "models from code" (see ``model_code.py``) with the carnn package shipped via
``code_paths``, so loading never unpickles a live Python object. ``load_context`` serves every
model format :mod:`carnn_pyfunc.formats` lists as read, and refuses the others with one line.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.pyfunc import PythonModel

from carnn_pyfunc.contract import InvalidRecordError, load_contract
from carnn_pyfunc.contract.fast import MAX_ROWS
from carnn_pyfunc.contract.validation import shown
from carnn_pyfunc.formats import (
    FORMAT_ARTIFACT,
    UnservableFormat,
    contract_written_by,
    model_format,
    refusal,
)
from carnn_pyfunc.model.forward import (
    FORWARD_CONFIG,
    THREADS_CONFIG,
    compile_forward,
    litert_forward,
)
from carnn_pyfunc.model.intervals import (
    HIGH_COLUMN,
    INTERVAL_PARAM,
    LOW_COLUMN,
    highest_level,
    interval,
)
from carnn_pyfunc.versions import library_versions

logger = logging.getLogger(__name__)

# Names of the model's artifacts, shared by training (which logs them) and loading.
NETWORK_ARTIFACT = "network"  # model.keras: the network itself (loads where TensorFlow is)
FORWARD_ARTIFACT = "forward"  # model.tflite: the same network compiled for serving
CONTRACT_ARTIFACT = "contract"  # contract.json: the fitted feature contract
CALIBRATION_ARTIFACT = "calibration"  # calibration.json: the intervals' conformal scores
PROFILE_ARTIFACT = "profile"  # profile.json: the training distribution (monitoring); optional
MARKER_ARTIFACT = FORMAT_ARTIFACT  # model_format.json: the model format (see formats.py)
SCALER_ARTIFACT = "scaler"  # scaler.joblib: the fitted scaler of model formats 2 and 3 only
OUTPUT_COLUMN = "mpg"
ERROR_COLUMN = "error"  # with params {"errors": "column"}: the reason a row has no MPG
ERRORS_PARAM, ERRORS_MODES = "errors", ("raise", "column")
# model_config key, for the engines that run on TensorFlow: threads per pool (0 = TensorFlow's
# default). One thread runs this small network inline in the request's thread.
TF_THREADS_CONFIG = "tf_threads"
DEFAULT_MODEL_CONFIG = {FORWARD_CONFIG: "litert", THREADS_CONFIG: 0, TF_THREADS_CONFIG: 1}
_OUTPUT_COLUMNS = pd.Index([OUTPUT_COLUMN])


class CarnnModel(PythonModel):
    """Raw car records in, miles per gallon out."""

    def load_context(self, context) -> None:
        config = {**DEFAULT_MODEL_CONFIG, **(context.model_config or {})}
        artifacts = context.artifacts
        self.model_format = served_format(artifacts)
        self.contract = load_contract(artifacts[CONTRACT_ARTIFACT], artifacts.get(SCALER_ARTIFACT))
        calibration = artifacts.get(CALIBRATION_ARTIFACT)  # model format 4 and older have none
        self.calibration = (
            np.asarray(json.loads(Path(calibration).read_text())["scores"], dtype=np.float64)
            if calibration
            else None
        )
        profile = artifacts.get(PROFILE_ARTIFACT)  # models logged before monitoring have none
        self.profile = json.loads(Path(profile).read_text()) if profile else None
        drift = {
            lib: (trained, installed)
            for lib, installed in library_versions().items()
            if (trained := self.contract.versions.get(lib)) not in (None, installed)
        }
        if drift:
            logger.warning("library versions differ from training (trained, installed): %s", drift)
        engine, threads = config[FORWARD_CONFIG], int(config.get(THREADS_CONFIG) or 0)
        n_features = self.contract.n_features
        if engine == "litert" and FORWARD_ARTIFACT in artifacts:  # compiled at training time
            flatbuffer = Path(artifacts[FORWARD_ARTIFACT]).read_bytes()
            self.forward = litert_forward(flatbuffer, n_features, threads)
            return
        _limit_tf_threads(int(config[TF_THREADS_CONFIG] or 0))
        import keras  # the Keras file, the source of truth (formats 2, 3: the only network)

        network = keras.saving.load_model(artifacts[NETWORK_ARTIFACT], compile=False)
        self.forward = compile_forward(network, n_features, engine, threads)

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        """MPG of raw records: a DataFrame, or a list of dicts (JSON records, no frame built).

        ``params={"errors": "column"}``: row by row, for batches: ``mpg`` is NaN and ``error``
        names the field for each invalid row, instead of raising on the first one.
        ``params={"interval": 0.9}``: also ``mpg_low`` and ``mpg_high``, a calibrated 90%
        prediction interval per row.
        """
        if not isinstance(model_input, pd.DataFrame | list):
            model_input = pd.DataFrame(model_input)
        columns = self.answer(model_input, params)
        n_rows = len(columns[OUTPUT_COLUMN])
        if ERROR_COLUMN in columns:
            columns[ERROR_COLUMN] = pd.array(columns[ERROR_COLUMN], dtype="string")
        if len(columns) == 1:  # explicit index and columns: 7x cheaper than a dict for one row
            mpg = columns[OUTPUT_COLUMN]
            return pd.DataFrame(mpg[:, None], index=pd.RangeIndex(n_rows), columns=_OUTPUT_COLUMNS)
        return pd.DataFrame(columns, index=pd.RangeIndex(n_rows))

    def answer(self, records, params=None) -> dict[str, np.ndarray | list]:
        """What :meth:`predict` answers, as columns (``mpg``; ``mpg_low``/``mpg_high``;
        ``error``, a list with None for a good row): no DataFrame, for the scoring service's
        own path (MLflow wraps ``predict`` in type-hint checks the contract makes needless).
        Raises MlflowException (INVALID_PARAMETER_VALUE) for bad records or params."""
        params = params or {}
        errors, level = params.get(ERRORS_PARAM, "raise"), params.get(INTERVAL_PARAM) or 0.0
        if not isinstance(errors, str) or errors not in ERRORS_MODES:
            raise MlflowException(
                f"{ERRORS_PARAM}: {shown(errors)} is not one of {', '.join(ERRORS_MODES)}",
                error_code=INVALID_PARAMETER_VALUE,
            )
        if level:
            self._check_level(level)
        try:
            if errors == "column":
                columns = self._predict_rows(records)
            else:
                columns = {OUTPUT_COLUMN: self._score(records)}
        except InvalidRecordError as err:
            # chained: a caller that wants the problems one by one finds them in __cause__
            raise MlflowException(str(err), error_code=INVALID_PARAMETER_VALUE) from err
        if level:
            low, high = interval(columns[OUTPUT_COLUMN], self.calibration, level)
            columns = {OUTPUT_COLUMN: columns.pop(OUTPUT_COLUMN), LOW_COLUMN: low,
                       HIGH_COLUMN: high, **columns}  # fmt: skip
        return columns

    def _check_level(self, level: object) -> None:
        if self.calibration is None:
            raise MlflowException(
                f"{INTERVAL_PARAM}: this model (model format {self.model_format}) carries no "
                "calibration for intervals; models logged by carnn 78e2834 or later do",
                error_code=INVALID_PARAMETER_VALUE,
            )
        if not (isinstance(level, int | float) and not isinstance(level, bool) and 0 < level < 1):
            raise MlflowException(
                f"{INTERVAL_PARAM}: {shown(level)} is not a level between 0 and 1 (0.9 for 90%)",
                error_code=INVALID_PARAMETER_VALUE,
            )
        if level > (most := highest_level(len(self.calibration))):
            raise MlflowException(
                f"{INTERVAL_PARAM}: {level:g} is more than the calibration of "
                f"{len(self.calibration)} cars supports; the largest level is "
                f"{math.floor(most * 10_000) / 10_000:g}",
                error_code=INVALID_PARAMETER_VALUE,
            )

    def _predict_rows(self, records) -> dict[str, np.ndarray | list]:
        parts, valid, errors = self.contract.validated_rows(records)
        mpg = np.full(len(valid), np.nan)
        if valid.any():
            mpg[valid] = self._forward_parts(*parts)
        return {OUTPUT_COLUMN: mpg, ERROR_COLUMN: errors}

    def _score(self, records) -> np.ndarray:
        if type(records) is list and len(records) <= MAX_ROWS:  # the few-records path
            return self._forward(self.contract.transform(records))
        return self._forward_parts(*self.contract.validated(records))

    def _forward_parts(self, numbers: np.ndarray, maker: np.ndarray, flags) -> np.ndarray:
        """Encoded and run block by block: a block's input matrix (1.3 MB) stays in the cache,
        where the whole batch's (16 MB for 100,000 rows) was written once and read once. The
        blocks are the forward pass's own (``block_rows``; a short last block joins the one
        before), so every row meets the network exactly as in one call."""
        n = len(numbers)
        block = getattr(self.forward, "block_rows", n) or 1  # (tf_function: the whole batch)
        starts = list(range(0, n, block))
        if len(starts) > 1 and n - starts[-1] < self.forward.parallel_rows:
            starts.pop()
        if len(starts) == 1:
            return self._forward(self.contract.encode(numbers, maker, flags))
        mpg = np.empty(n, dtype=np.float64)
        for start, end in zip(starts, [*starts[1:], n], strict=True):
            block = self.contract.encode(numbers[start:end], maker[start:end], flags[start:end])
            mpg[start:end] = self.forward(block)
        return self._checked(mpg)

    def _forward(self, features: np.ndarray) -> np.ndarray:
        return self._checked(self.forward(features).astype(np.float64))

    def _checked(self, mpg: np.ndarray) -> np.ndarray:
        finite = all(map(math.isfinite, mpg.tolist())) if len(mpg) <= 8 else np.isfinite(mpg).all()
        if not finite:  # never a silent inf or NaN: name the row instead
            row = int(np.argmin(np.isfinite(mpg)))
            raise MlflowException(
                f"input: row {row} is too far outside the cars the model knows to be scored",
                error_code=INVALID_PARAMETER_VALUE,
            )
        return mpg


def served_format(artifacts: dict[str, str]) -> int:
    """The model format of these artifacts (name -> local path); UnservableFormat, one line, if
    this code does not serve it here."""
    state = json.loads(Path(artifacts[CONTRACT_ARTIFACT]).read_text())
    number = model_format(artifacts, state.get("format"))
    why = refusal(number, contract_written_by(state.get("format"), state.get("feature_names")))
    if why:
        raise UnservableFormat(why)
    return number


def _limit_tf_threads(threads: int) -> None:
    """Size TensorFlow's thread pools, if this process has not started TensorFlow yet."""
    if threads <= 0:
        return
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # TensorFlow already initialised here (e.g. by training): keep its pools
        logger.debug(
            "TensorFlow already initialised: %s=%d not applied", TF_THREADS_CONFIG, threads
        )
