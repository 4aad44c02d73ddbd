"""The "models from code" entry MLflow loads: it names the PythonModel and nothing else."""

from mlflow.models import set_model

from carnn_pyfunc.model.pyfunc import CarnnModel

set_model(CarnnModel())
