"""Model monitoring: what a served version was asked and answered, the true values that arrive
later, and whether its inputs still look like its training data and its answers are still right.

- ``profile``: the reference profile logged with each model (the training distribution of every
  input field and the maker, and the model's test figures).
- ``schema``: the prediction log's and the labels' columns and layout (Hive-partitioned Parquet
  under one root: any filesystem URI pyarrow supports).
- ``prediction_log``: the writer `carnn serve` and `carnn score` use: batches off the request
  path, a bounded queue (drops counted), each worker its own files, flushed at shutdown.
- ``labels``: true MPG figures for logged rows (``POST /feedback``, `carnn feedback`).
- ``labelled``: a window's labelled served cars (for ``train.py --extra-data`` and the
  live-evidence gate).
- ``reading``: a window of the log joined with its labels (pyarrow datasets, partitions pruned);
  ``spark_reading``: the same with Spark, for a log too big for one machine.
- ``drift``: per-field drift against the profile (KS, chi-square, Holm or Benjamini-Hochberg
  across fields, Wasserstein, PSI, Jensen-Shannon, share outside the training range).
- ``accuracy``: live MAE, RMSE, interval coverage and width with bootstrap intervals.
- ``alerts``: the thresholds (`carnn monitor`'s options and their defaults) and the reasons.
- ``report``: the monitor's HTML page (inline SVG histograms and trends).
- ``monitor``: one window judged, logged as a run of the MLflow experiment ``carnn-monitoring``.

May import: numpy, pandas, pyarrow, :mod:`carnn_pyfunc.contract`; ``monitor`` and its report
also scipy and MLflow (the ``monitor`` extra: the serving image does not carry them).
"""
