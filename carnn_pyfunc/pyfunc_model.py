"""The MLflow PythonModel: everything is loaded in ``load_context``; ``predict`` only computes.

Logged as "models from code" (see ``model_code.py``) with this package shipped via
``code_paths``, so loading never unpickles a live Python object.
"""

from __future__ import annotations

import logging

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


class CarnnModel(PythonModel):
    """Raw car records in, miles per gallon out."""

    def load_context(self, context) -> None:
        import keras

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
        mpg = self.forward(features).numpy()[:, 0].astype(np.float64)
        return pd.DataFrame({OUTPUT_COLUMN: mpg})


def compile_forward(network, n_features: int):
    """The network's inference pass as a ``tf.function`` with a fixed input signature, warmed up.

    One trace serves every batch size; ``model.predict`` would cost ~50 ms a call.
    """
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([None, n_features], tf.float32)])
    def forward(features):
        return network(features, training=False)

    forward(np.zeros((1, n_features), dtype=np.float32))
    return forward
