"""The Spark engine: Parquet in, ``mlflow.pyfunc.spark_udf`` per Arrow batch, Parquet out.

The driver checks the input's columns (nothing runs for a file that cannot be scored), builds the
UDF (``env_manager="local"``: the executors' Python must hold the model's requirements; an
explicit struct result type ``mpg``, ``error``; ``errors="column"``) and writes the input's
columns plus ``mpg`` and ``error`` to a hidden sibling of OUTPUT, swapped into place when the job
has succeeded (Hadoop's FileSystem API: a local path, ``hdfs://`` or ``s3a://`` alike): the
previous output stays until the new one is complete, and a failure leaves one of them.

Each task's network runs on the cores Spark gives the task (``spark.task.cpus``, the model's
``forward_threads``), so concurrent tasks never oversubscribe an executor.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
import warnings

from carnn_pyfunc.batch.columns import NULL, NUMBER, TEXT, check_kinds, field_columns
from carnn_pyfunc.batch.outcome import (
    ERROR_COLUMN,
    ERRORS_PARAM,
    OUTPUT_COLUMN,
    BatchError,
    BatchInputError,
    Summary,
    check_model,
)
from carnn_pyfunc.batch.replace import write_then_replace
from carnn_pyfunc.contract.fields import BY_NAME

DEFAULT_MASTER = "local[*]"
# Rows per model call. The UDF gets the Parquet reader's batches (4,096 rows by default) cut at
# Arrow's limit (10,000 by default); a call has a fixed cost (MLflow's schema enforcement, frames
# built per call) that small batches pay hundreds of times per million rows.
BATCH_ROWS = 100_000
BATCH_ROWS_CONFS = (
    "spark.sql.execution.arrow.maxRecordsPerBatch",
    "spark.sql.parquet.columnarReaderBatchSize",
)
THREADS_CONFIG = "forward_threads"  # the model's model_config key: threads of its network
_FILE_ORDER = ("__carnn_file", "__carnn_row")  # sort keys for an input of several files
_PANDAS_WARNING = "PySpark does not yet fully support pandas"  # pandas 3: it works (tested)


def start_session(master: str | None = None, conf: dict[str, str] | None = None):
    """A Spark session. ``master`` None: spark-submit's ``--master`` when run by spark-submit,
    else ``local[*]``. A local session's Python workers run this interpreter."""
    from pyspark.sql import SparkSession

    warnings.filterwarnings("ignore", message=_PANDAS_WARNING, category=FutureWarning)
    logging.getLogger("py4j").setLevel(logging.WARNING)  # its INFO lines are every connection's
    builder = SparkSession.builder.appName("carnn-score")
    under_submit = "PYSPARK_GATEWAY_PORT" in os.environ  # spark-submit started this driver
    if master or not under_submit:
        builder = builder.master(master or DEFAULT_MASTER)
    if (master or DEFAULT_MASTER).startswith("local") and not under_submit:
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # read by pyspark, not a conf
        builder = builder.config("spark.executorEnv.PYTHONWARNINGS", f"ignore:{_PANDAS_WARNING}")
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def score_parquet(spark, model_uri: str, source: str, target: str) -> Summary:
    """Score the Parquet file or folder ``source`` into the Parquet folder ``target`` (replaced if
    it exists): the same rows, in order, plus ``mpg`` and ``error``. BatchInputError, before any
    job runs, for an input that cannot be scored at all."""
    start = time.perf_counter()
    frame = _read(spark, source)
    fields = field_columns(frame.columns, source)
    types = {field.name: field.dataType for field in frame.schema.fields}
    check_kinds({name: _kind(types[name]) for name in fields}, source)
    columns = [_column(name) for name in frame.columns]
    several = len(frame.inputFiles()) > 1
    if several:  # Spark reads the largest files first: sort back by (file, row in the file)
        frame = frame.select("*", *_file_order())
    scored = _with_answers(spark, frame, fields, model_uri)
    if several:
        scored = scored.orderBy(*_FILE_ORDER)
    rows, invalid = _write(spark, scored.select(*columns, OUTPUT_COLUMN, ERROR_COLUMN), target)
    return Summary(rows=rows, invalid=invalid, seconds=time.perf_counter() - start)


def result_type():
    """The UDF's result: the model's two output columns."""
    from pyspark.sql.types import DoubleType, StringType, StructField, StructType

    return StructType(
        [StructField(OUTPUT_COLUMN, DoubleType()), StructField(ERROR_COLUMN, StringType())]
    )


def task_model_config(spark) -> dict[str, int]:
    """The model's config in each task: its network on the cores Spark gives a task
    (``spark.task.cpus``), so the tasks running side by side never oversubscribe an executor."""
    return {THREADS_CONFIG: int(spark.sparkContext.getConf().get("spark.task.cpus", "1"))}


def _with_answers(spark, frame, fields: list[str], model_uri: str):
    import mlflow
    from pyspark.sql import functions as F

    for key in BATCH_ROWS_CONFS:  # unless the job sets them
        if spark.conf.get(key, None) is None:
            spark.conf.set(key, str(BATCH_ROWS))
    with warnings.catch_warnings(), _quiet("mlflow"):  # env_manager="local" is by choice
        warnings.filterwarnings("ignore", message=_PANDAS_WARNING, category=FutureWarning)
        udf = mlflow.pyfunc.spark_udf(
            spark,
            model_uri,
            result_type=result_type(),
            env_manager="local",
            params=ERRORS_PARAM,
            model_config=task_model_config(spark),
        )
    check_model(udf.metadata, model_uri)
    inputs = F.struct(*[
        _column(name).cast("double" if BY_NAME[name].numeric else "string").alias(name)
        for name in fields
    ])  # fmt: skip
    # MLflow's struct conversion turns a null string into text ("<NA>") in any batch that has
    # an error: a row's error is taken only where its mpg is NaN (the model's invalid rows)
    answer = "__carnn_answer"
    mpg = F.col(f"{answer}.{OUTPUT_COLUMN}")
    invalid = mpg.isNull() | F.isnan(mpg)
    return frame.select("*", udf(inputs).alias(answer)).select(
        *[_column(name) for name in frame.columns],
        F.when(~invalid, mpg).alias(OUTPUT_COLUMN),
        F.when(invalid, F.col(f"{answer}.{ERROR_COLUMN}")).alias(ERROR_COLUMN),
    )


@contextlib.contextmanager
def _quiet(logger_name: str):
    """Warnings of ``logger_name`` silenced for the block (errors still show)."""
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _file_order():
    from pyspark.sql import functions as F

    file, row = _FILE_ORDER
    return F.col("_metadata.file_path").alias(file), F.col("_metadata.row_index").alias(row)


def _kind(data_type) -> str:
    from pyspark.sql import types as T

    if isinstance(data_type, T.NumericType):
        return NUMBER
    if isinstance(data_type, T.StringType | T.VarcharType | T.CharType):
        return TEXT
    if isinstance(data_type, T.NullType):
        return NULL
    return data_type.simpleString()


def _column(name: str):
    """A top-level column by its exact name (dots and backticks in it are not paths)."""
    from pyspark.sql import functions as F

    return F.col("`" + name.replace("`", "``") + "`")


def _read(spark, source: str):
    from pyspark.errors import AnalysisException

    try:
        return spark.read.parquet(source)
    except AnalysisException as err:
        reason = str(err).splitlines()[0]
        raise BatchInputError(f"{source}: not a readable Parquet input ({reason})") from None


def _run_job(job) -> None:
    """Run a Spark action; a failed job is a BatchError with its cause's last line, not the
    JVM's and the Python worker's tracebacks."""
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import PySparkException

    try:
        job()
    except (PySparkException, Py4JJavaError) as err:
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        causes = [line for line in lines if "Exception: " in line or "Error: " in line]
        raise BatchError(f"the Spark job failed: {(causes or lines or ['?'])[-1]}") from None


def _write(spark, scored, target: str) -> tuple[int, int]:
    """Write to a hidden sibling of ``target``, then swap it into place (the previous output
    stays until the new one is complete, :mod:`~carnn_pyfunc.batch.replace`); (rows, invalid
    rows), counted by the write job itself (an observation: no second pass over the output)."""
    from pyspark.sql import Observation
    from pyspark.sql import functions as F

    counts = Observation("carnn-score")
    observed = scored.observe(
        counts, F.count(F.lit(1)).alias("rows"), F.count(F.col(ERROR_COLUMN)).alias("invalid")
    )
    job = observed.write.mode("overwrite")
    write_then_replace(
        HadoopFolders(spark), target, lambda path: _run_job(lambda: job.parquet(path))
    )
    return int(counts.get["rows"]), int(counts.get["invalid"])


class HadoopFolders:
    """:class:`~carnn_pyfunc.batch.replace.Folders` on Hadoop's FileSystem API (local paths,
    ``hdfs://`` and ``s3a://`` alike); a failed operation is an OSError."""

    def __init__(self, spark) -> None:
        self.jvm = spark.sparkContext._jvm
        self.conf = spark.sparkContext._jsc.hadoopConfiguration()

    def sibling(self, path: str, name: str) -> str:
        return self.jvm.org.apache.hadoop.fs.Path(self._path(path).getParent(), name).toString()

    def exists(self, path: str) -> bool:
        return self._call("exists", path)

    def rename(self, source: str, target: str) -> None:
        if not self._call("rename", source, target):
            raise OSError(f"the file system refused to rename {source} to {target}")

    def delete(self, path: str) -> None:
        if not self._call("delete", path, True) and self.exists(path):
            raise OSError(f"the file system refused to delete {path}")

    def _path(self, path: str):
        return self.jvm.org.apache.hadoop.fs.Path(path)

    def _call(self, operation: str, path: str, *args):
        from py4j.protocol import Py4JJavaError

        hadoop = self._path(path)
        more = [self._path(a) if isinstance(a, str) else a for a in args]
        try:
            return getattr(hadoop.getFileSystem(self.conf), operation)(hadoop, *more)
        except Py4JJavaError as err:  # an IOException of the file system
            raise OSError(str(err.java_exception)) from None
