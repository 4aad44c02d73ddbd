"""Benchmark floor: a pyfunc that does nothing (zeros), to measure MLflow's own cost."""

import numpy as np
import pandas as pd
from mlflow.models import set_model
from mlflow.pyfunc import PythonModel


class FloorModel(PythonModel):
    def predict(self, context, model_input: pd.DataFrame, params=None):
        return pd.DataFrame({"mpg": np.zeros(len(model_input))})


set_model(FloorModel())
