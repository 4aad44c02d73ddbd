"""Models from code for the rollout tests: the session's carnn model, made to misbehave.

``model_config["mode"]``: ``fail`` raises for heavy cars (a 5xx on some inputs), ``slow`` sleeps
before answering, ``worse`` answers 3 MPG too high. The carnn model itself is an artifact.
"""

import time

import mlflow
from mlflow.models import set_model
from mlflow.pyfunc import PythonModel


class Misbehaving(PythonModel):
    def load_context(self, context):
        self.inner = mlflow.pyfunc.load_model(context.artifacts["inner"]).unwrap_python_model()
        self.mode = context.model_config["mode"]

    def predict(self, context, model_input, params=None):
        answer = self.inner.predict(None, model_input, params)
        if self.mode == "fail":
            weights = [r.get("weight", 0) for r in model_input] if isinstance(
                model_input, list) else list(model_input["weight"])  # fmt: skip
            if any(float(w) > 3000 for w in weights):
                raise RuntimeError("the canary breaks on heavy cars")
        elif self.mode == "slow":
            time.sleep(0.4)
        elif self.mode == "worse":
            answer["mpg"] = answer["mpg"] + 3.0
        return answer


set_model(Misbehaving())
