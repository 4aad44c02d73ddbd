"""The MLflow PythonModel: everything is loaded in ``load_context``; ``predict`` only computes.

Logged as "models from code" (see ``model_code.py``) with this package shipped via
``code_paths``, so loading never unpickles a live Python object.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.pyfunc import PythonModel

from carnn_pyfunc.features import FeatureContract, InvalidRecordError, library_versions

logger = logging.getLogger(__name__)

# Names of the model's artifacts, shared by training (which logs them) and loading.
NETWORK_ARTIFACT = "network"
SCALER_ARTIFACT = "scaler"
CONTRACT_ARTIFACT = "contract"
OUTPUT_COLUMN = "mpg"
# model_config key: TensorFlow threads per pool (0 = TensorFlow's default). One thread runs this
# small network inline in the request's thread: no pool hand-off, no wake-up latency.
TF_THREADS_CONFIG = "tf_threads"
DEFAULT_MODEL_CONFIG = {TF_THREADS_CONFIG: 1}
_OUTPUT_COLUMNS = pd.Index([OUTPUT_COLUMN])


class CarnnModel(PythonModel):
    """Raw car records in, miles per gallon out."""

    def load_context(self, context) -> None:
        import keras

        _limit_tf_threads(int((context.model_config or {}).get(TF_THREADS_CONFIG) or 0))
        artifacts = context.artifacts
        self.contract = FeatureContract.load(
            artifacts[CONTRACT_ARTIFACT], artifacts[SCALER_ARTIFACT]
        )
        drift = {
            lib: (trained, installed)
            for lib, installed in library_versions().items()
            if (trained := self.contract.versions.get(lib)) not in (None, installed)
        }
        if drift:
            logger.warning("library versions differ from training (trained, installed): %s", drift)
        self.network = keras.saving.load_model(artifacts[NETWORK_ARTIFACT], compile=False)
        self.forward = compile_forward(self.network, self.contract.n_features)

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        records = (
            model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        )
        try:
            features = self.contract.transform(records)
        except InvalidRecordError as err:
            raise MlflowException(str(err), error_code=INVALID_PARAMETER_VALUE) from None
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


def compile_forward(network, n_features: int) -> Callable[[np.ndarray], np.ndarray]:
    """The network's inference pass, compiled once: float32 matrix in, 1-D float32 MPG out.

    A ``tf.function`` with a fixed input signature, traced and warmed up here; its concrete
    function is called directly (about 0.2 ms a call, where ``model.predict`` costs ~50 ms).
    """
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([None, n_features], tf.float32)])
    def infer(features):
        return network(features, training=False)

    concrete = infer.get_concrete_function()

    def forward(features: np.ndarray) -> np.ndarray:
        return concrete(tf.constant(features)).numpy()[:, 0]

    forward(np.zeros((1, n_features), dtype=np.float32))
    return forward
