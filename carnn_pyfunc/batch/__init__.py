"""Batch scoring (`carnn score`): files of cars in, the same rows out with ``mpg`` and ``error``.

- ``outcome``: what a run reports (:class:`Summary`), the model check, and the errors that stop
  a whole batch (:class:`BatchError`; :class:`BatchInputError`: a missing required column, an
  unreadable file).
- ``columns``: the input's columns against the field table: required fields, column types, the
  output's own two columns.
- ``files``: the format from the extension, chunked readers (CSV, Parquet), and the writer that
  leaves a complete file or none.
- ``pandas_engine``: one process: the file chunk by chunk through the model, with progress.
- ``replace``: an output folder replaced without ever losing it (the new one written beside it,
  then swapped in; a failure leaves one complete output, old or new).
- ``spark_engine``: a Spark session, ``mlflow.pyfunc.spark_udf``, Parquet in and out.

The model does all validation and encoding (its ``errors="column"`` param names the field of each
bad row); this package only moves rows to it and back, in order, in bounded memory.

May import: :mod:`carnn_pyfunc.contract` (the field table only), MLflow, pyarrow, pandas, tqdm
and pyspark (lazily, inside the Spark engine's functions).
"""
