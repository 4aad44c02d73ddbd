"""The model: the Keras network, its compiled forward pass, the pyfunc and how it is logged.

- ``network``: the architecture (the seed ensemble trained as one model, merged into one network).
- ``forward``: the network compiled once, at training time, to a flatbuffer run by LiteRT.
- ``pyfunc``: the MLflow PythonModel (``load_context`` loads everything, ``predict`` computes).
- ``model_code``: the "models from code" entry MLflow loads.
- ``intervals``: calibrated prediction intervals (split conformal on out-of-sample residuals).
- ``bundle``: log the one pyfunc model with its artifacts, signature and pins.

May import: :mod:`carnn_pyfunc.contract`, :mod:`carnn_pyfunc.config`, :mod:`carnn_pyfunc.versions`,
:mod:`carnn_pyfunc.formats`, Keras/TensorFlow and MLflow; never training, registry or serving.
"""
