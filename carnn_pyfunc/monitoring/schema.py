"""The prediction log and the labels: columns and layout, one definition for writer and reader.

Under one root (a local folder, or any filesystem URI pyarrow supports: ``s3://``, ``gs://``,
``hdfs://``)::

    ROOT/predictions/date=2026-12-02/model_version=3/part-<host>-<pid>-<seq>.parquet
    ROOT/labels/date=2026-12-02/part-<host>-<pid>-<seq>.parquet

Hive partitioning, so DuckDB (``read_parquet('ROOT/predictions/**/*.parquet',
hive_partitioning=true)``), pandas (``pd.read_parquet('ROOT/predictions')``) or Spark read it as
one table. Each writer (a worker, a `carnn score` run) writes files of its own: no two processes
ever append to one file.
"""

from __future__ import annotations

import pyarrow as pa

from carnn_pyfunc.contract.fields import FIELDS

PREDICTIONS, LABELS = "predictions", "labels"
ROLES = ("primary", "shadow", "canary")

PREDICTION_SCHEMA = pa.schema(
    [
        ("request_id", pa.string()),
        ("row", pa.int32()),
        ("time", pa.timestamp("ms", tz="UTC")),
        ("model_name", pa.string()),
        ("run_id", pa.string()),
        ("role", pa.string()),  # primary, shadow or canary (see carnn_pyfunc.rollout)
        *[(f.name, pa.float64() if f.numeric else pa.string()) for f in FIELDS],
        ("mpg", pa.float64()),  # null: the row failed (see error)
        ("mpg_low", pa.float64()),  # the interval, when one was asked for
        ("mpg_high", pa.float64()),
        ("error", pa.string()),
        ("latency_ms", pa.float64()),  # the whole request's, on every row of it
        ("status", pa.int16()),  # 200 answered; 500: the version failed (a row per request)
    ]
)
PARTITIONS = ("date", "model_version")  # directories, not columns in the files

LABEL_SCHEMA = pa.schema(
    [
        ("request_id", pa.string()),
        ("row", pa.int32()),
        ("mpg", pa.float64()),  # the true figure
        ("time", pa.timestamp("ms", tz="UTC")),  # when it arrived
    ]
)
