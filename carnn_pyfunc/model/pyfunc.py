"""The MLflow PythonModel: everything is loaded in ``load_context``; ``predict`` only computes.

Logged as "models from code" (see ``model_code.py``) with the carnn package shipped via
``code_paths``, so loading never unpickles a live Python object.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.pyfunc import PythonModel

from carnn_pyfunc.contract import InvalidRecordError, load_contract
from carnn_pyfunc.model.forward import FORWARD_CONFIG, compile_forward
from carnn_pyfunc.versions import library_versions

logger = logging.getLogger(__name__)

# Names of the model's artifacts, shared by training (which logs them) and loading.
NETWORK_ARTIFACT = "network"
SCALER_ARTIFACT = "scaler"
CONTRACT_ARTIFACT = "contract"
OUTPUT_COLUMN = "mpg"
# model_config key: TensorFlow threads per pool (0 = TensorFlow's default). One thread runs this
# small network inline in the request's thread: no pool hand-off, no wake-up latency.
TF_THREADS_CONFIG = "tf_threads"
DEFAULT_MODEL_CONFIG = {TF_THREADS_CONFIG: 1, FORWARD_CONFIG: "tflite"}
_OUTPUT_COLUMNS = pd.Index([OUTPUT_COLUMN])


class CarnnModel(PythonModel):
    """Raw car records in, miles per gallon out."""

    def load_context(self, context) -> None:
        import keras

        config = {**DEFAULT_MODEL_CONFIG, **(context.model_config or {})}
        _limit_tf_threads(int(config[TF_THREADS_CONFIG] or 0))
        artifacts = context.artifacts
        self.contract = load_contract(artifacts[CONTRACT_ARTIFACT], artifacts[SCALER_ARTIFACT])
        drift = {
            lib: (trained, installed)
            for lib, installed in library_versions().items()
            if (trained := self.contract.versions.get(lib)) not in (None, installed)
        }
        if drift:
            logger.warning("library versions differ from training (trained, installed): %s", drift)
        self.network = keras.saving.load_model(artifacts[NETWORK_ARTIFACT], compile=False)
        self.forward = compile_forward(
            self.network, self.contract.n_features, config[FORWARD_CONFIG]
        )

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        """MPG of raw records: a DataFrame, or a list of dicts (JSON records, no frame built)."""
        records = (
            model_input
            if isinstance(model_input, pd.DataFrame | list)
            else pd.DataFrame(model_input)
        )
        try:
            features = self.contract.transform(records)
        except InvalidRecordError as err:
            # chained: a caller that wants the problems one by one finds them in __cause__
            raise MlflowException(str(err), error_code=INVALID_PARAMETER_VALUE) from err
        mpg = self.forward(features).astype(np.float64)
        # Explicit index and columns: 7x cheaper than a dict for one row.
        return pd.DataFrame(mpg[:, None], index=pd.RangeIndex(len(mpg)), columns=_OUTPUT_COLUMNS)


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
