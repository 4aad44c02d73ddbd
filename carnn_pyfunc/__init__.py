"""carnn: an MLflow-tracked Keras model of car fuel economy, served as one pyfunc model."""

__version__ = "0.1.0"
