"""Model monitoring: what a served version was asked and answered, the true values that arrive
later, and whether its inputs still look like its training data and its answers are still right.

- ``profile``: the reference profile logged with each model (the training distribution of every
  input field and the maker, and the model's test figures).
- ``schema``: the prediction log's and the labels' columns and layout (Hive-partitioned Parquet
  under one root: any filesystem URI pyarrow supports).
- ``prediction_log``: the writer `carnn serve` and `carnn score` use: batches off the request
  path, a bounded queue (drops counted), each worker its own files, flushed at shutdown.
- ``labels``: true MPG figures for logged rows (``POST /feedback``, `carnn feedback`).

May import: numpy, pandas, pyarrow, :mod:`carnn_pyfunc.contract`; ``monitor`` and its report
also scipy and MLflow (the ``monitor`` extra: the serving image does not carry them).
"""
