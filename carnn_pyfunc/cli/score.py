"""`carnn score`: batch scoring of a file of cars, in this process (pandas) or as a Spark job."""

from __future__ import annotations

import os
import time
from pathlib import Path

import click

ENGINES = ("pandas", "spark")


@click.command()
@click.argument("input_path", metavar="INPUT")
@click.argument("output_path", metavar="OUTPUT")
@click.option(
    "--model-uri",
    default="models:/carnn@production",
    show_default=True,
    help="the model to score with (any MLflow model URI)",
)
@click.option(
    "--engine",
    type=click.Choice(ENGINES),
    default="pandas",
    show_default=True,
    help="pandas: this process, chunk by chunk, CSV or Parquet; spark: a Spark job, Parquet in, "
    "a Parquet folder out",
)
@click.option(
    "--spark-master",
    default=None,
    help="the Spark master for --engine spark  [default: local[*]; under spark-submit, its own]",
)
@click.option(
    "--chunk-rows",
    type=click.IntRange(min=1),
    default=100_000,
    show_default=True,
    help="rows per model call (pandas engine)",
)
@click.option(
    "--prediction-log",
    default=None,
    envvar="CARNN_PREDICTION_LOG",
    show_envvar=True,
    help="log every scored row under this root, as carnn serve does (pandas engine)",
)
@click.option("--progress/--no-progress", default=True, help="a progress bar on a terminal")
def score(
    input_path: str,
    output_path: str,
    model_uri: str,
    engine: str,
    spark_master: str | None,
    chunk_rows: int,
    prediction_log: str | None,
    progress: bool,
) -> None:
    """Score INPUT (.csv or .parquet) into OUTPUT: the same rows, in order, plus `mpg` and
    `error`.

    A row that fails validation keeps its place with `mpg` empty and `error` naming the field;
    it never fails the others. A file that cannot be scored at all (a missing required column,
    an unreadable file) exits with 1 and leaves nothing at OUTPUT.
    """
    from carnn_pyfunc.batch.outcome import BatchError

    # MLflow's per-file download bars, for a model of a few files, would bury the summary
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    try:
        if engine == "pandas":
            summary = _score_pandas(
                input_path, output_path, model_uri, chunk_rows, progress, prediction_log
            )
        elif prediction_log:
            raise click.UsageError("--prediction-log: with --engine pandas only")
        else:
            summary = _score_spark(input_path, output_path, model_uri, spark_master)
    except BatchError as err:
        raise click.ClickException(str(err)) from None
    if summary.startup_seconds:
        click.echo(f"spark session: started in {summary.startup_seconds:.1f} s (not counted below)")
    click.echo(f"scored:        {summary.describe()}")
    click.echo(f"wrote:         {output_path}")
    _log_to_mlflow_run(summary)


def _score_pandas(input_path, output_path, model_uri, chunk_rows, progress, prediction_log):
    from carnn_pyfunc.batch import files, pandas_engine

    source, target = Path(input_path), Path(output_path)
    for path in (source, target):
        files.file_format(path)  # an unknown extension is refused before the model loads
    model = pandas_engine.load_model(model_uri)
    log = _prediction_log(prediction_log, model_uri) if prediction_log else None
    try:
        return pandas_engine.score_file(
            model, source, target, chunk_rows=chunk_rows, progress=progress, log=log
        )
    finally:
        if log is not None:
            log.close()


def _prediction_log(root: str, model_uri: str):
    """The log of this scoring job: every chunk's rows, written as they are scored."""
    from carnn_pyfunc.monitoring.prediction_log import ModelId, PredictionLog
    from carnn_pyfunc.serving.loaded import registered

    name, version, run_id = registered(model_uri)
    return PredictionLog(root, ModelId(name, version, run_id), max_rows=10**12)


def _score_spark(input_path, output_path, model_uri, spark_master):
    from dataclasses import replace

    from carnn_pyfunc.batch import spark_engine
    from carnn_pyfunc.batch.outcome import BatchInputError

    for path, role in ((input_path, "INPUT"), (output_path, "OUTPUT")):
        if path.lower().endswith(".csv"):
            raise BatchInputError(
                f"{path}: --engine spark reads and writes Parquet; give a .parquet {role} "
                "(or a folder), or score the CSV with --engine pandas"
            )
    start = time.perf_counter()
    spark = spark_engine.start_session(spark_master)
    startup = time.perf_counter() - start
    try:
        summary = spark_engine.score_parquet(spark, model_uri, input_path, output_path)
    finally:
        spark.stop()
    return replace(summary, startup_seconds=startup)


def _log_to_mlflow_run(summary) -> None:
    """Under `mlflow run . -e score`, the summary becomes the run's metrics."""
    run_id = os.environ.get("MLFLOW_RUN_ID")
    if not run_id:
        return
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    metrics = [Metric(key, float(value), now, 0) for key, value in summary.metrics().items()]
    MlflowClient().log_batch(run_id, metrics=metrics)
