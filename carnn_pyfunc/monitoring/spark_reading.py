"""`carnn monitor --engine spark`: a window of a log too big for one machine, read by Spark.

Spark lists and reads the partitions (``date``, ``model_version``; finished ``*.parquet``
files only), filters the window, joins the latest label of each row and brings back a uniform
sample of about ``sample_rows`` rows when the window holds more (the count is logged), on
which :mod:`.monitor` computes the same statistics as for a window read here. Tests at 200,000
rows already find any shift that matters; the sample keeps the driver's memory bounded.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings

import pandas as pd

from carnn_pyfunc.monitoring.prediction_log import filesystem
from carnn_pyfunc.monitoring.reading import LABEL_COLUMN, LogNotFound, Window
from carnn_pyfunc.monitoring.schema import LABELS, PREDICTION_SCHEMA, PREDICTIONS

logger = logging.getLogger(__name__)
DEFAULT_MASTER = "local[*]"
SEED = 7  # the sample's
_SPARK_TYPES = {"double": "double", "int16": "short", "int32": "int", "string": "string"}
_PANDAS_WARNING = "PySpark does not yet fully support pandas"  # pandas 3: it works (tested)


def session(master: str | None = None):
    """A Spark session in UTC with partition values kept as text (``model_version=3`` is
    ``"3"``, as the pandas engine reads it)."""
    from pyspark.sql import SparkSession

    warnings.filterwarnings("ignore", message=_PANDAS_WARNING, category=FutureWarning)
    logging.getLogger("py4j").setLevel(logging.WARNING)
    builder = SparkSession.builder.appName("carnn-monitor")
    under_submit = "PYSPARK_GATEWAY_PORT" in os.environ
    if master or not under_submit:
        builder = builder.master(master or DEFAULT_MASTER)
    if not under_submit:
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    return (
        builder.config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.sources.partitionColumnTypeInference.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )


def _uri(root: str, folder: str) -> str:
    """A path Spark's Hadoop filesystems read (a local folder as file://)."""
    if "://" in root:
        return f"{root.rstrip('/')}/{folder}"
    return f"file://{filesystem(root)[1]}/{folder}"


def _exists(root: str, folder: str) -> bool:
    from pyarrow import fs

    filesystem_, path = filesystem(root)
    return filesystem_.get_file_info(f"{path}/{folder}").type == fs.FileType.Directory


def read_window_spark(
    root: str, window: Window, master: str | None = None, sample_rows: int = 200_000, spark=None
) -> pd.DataFrame:
    """The window's rows joined with their labels, as :func:`.reading.read_window` answers,
    sampled down to ``sample_rows`` rows when the window holds more."""
    from pyspark.sql import Window as SparkWindow
    from pyspark.sql import functions as F

    if not _exists(root, PREDICTIONS):
        raise LogNotFound(f"{root}: no prediction log here (no {PREDICTIONS}/ folder)")
    spark = spark or session(master)
    since, until = pd.Timestamp(window.since), pd.Timestamp(window.until)
    base = _uri(root, PREDICTIONS)
    log = (
        spark.read.option("basePath", base)
        .option("pathGlobFilter", "*.parquet")
        .option("mergeSchema", "true")  # files written before a column was added lack it
        .parquet(base)
    )
    rows = log.where(
        (F.col("date") >= f"{since:%Y-%m-%d}")
        & (F.col("date") <= f"{until:%Y-%m-%d}")
        & (F.col("time") >= F.lit(since.to_pydatetime()))
        & (F.col("time") < F.lit(until.to_pydatetime()))
    )
    if window.model_version is not None:
        rows = rows.where(F.col("model_version") == str(window.model_version))
    if window.model_name is not None:
        rows = rows.where(F.col("model_name") == window.model_name)
    if _exists(root, LABELS):
        labels = spark.read.option("pathGlobFilter", "*.parquet").parquet(_uri(root, LABELS))
        latest = SparkWindow.partitionBy("request_id", "row").orderBy(F.col("time").desc())
        labels = (
            labels.where(F.col("date") >= f"{since:%Y-%m-%d}")
            .withColumn("_n", F.row_number().over(latest))
            .where(F.col("_n") == 1)
            .select("request_id", "row", F.col("mpg").alias(LABEL_COLUMN))
        )
        rows = rows.join(labels, on=["request_id", "row"], how="left")
    else:
        rows = rows.withColumn(LABEL_COLUMN, F.lit(None).cast("double"))
    total = rows.count()
    if total > sample_rows:
        logger.info(
            "window: %d rows; the statistics use a uniform sample of ~%d", total, sample_rows
        )
        rows = rows.sample(fraction=sample_rows / total, seed=SEED)
    columns = [*PREDICTION_SCHEMA.names, "date", "model_version", LABEL_COLUMN]
    for name in set(columns) - set(rows.columns):  # not in any file yet: null
        kind = _SPARK_TYPES.get(str(PREDICTION_SCHEMA.field(name).type), "string")
        rows = rows.withColumn(name, F.lit(None).cast(kind))
    frame = rows.select(*columns).toPandas()
    return _as_read_here(frame)


def _as_read_here(frame: pd.DataFrame) -> pd.DataFrame:
    """The dtypes the pandas engine gives (times in UTC, text as strings, row as int32)."""
    time = pd.to_datetime(frame["time"])
    frame["time"] = time.dt.tz_localize("UTC") if time.dt.tz is None else time.dt.tz_convert("UTC")
    for name in (
        "request_id",
        "model_name",
        "run_id",
        "role",
        "name",
        "error",
        "date",
        "model_version",
    ):
        frame[name] = frame[name].astype(pd.StringDtype())
    frame["row"] = frame["row"].astype("int32")
    numbers = [f.name for f in PREDICTION_SCHEMA if str(f.type) == "double"] + [LABEL_COLUMN]
    return frame.astype(dict.fromkeys(numbers, "float64"))
