"""One tracked training run: fit, evaluate, log everything, log the pyfunc model, register it."""

from __future__ import annotations

import logging
import subprocess
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import keras
import mlflow
import numpy as np
import pandas as pd
from mlflow.entities import Metric
from mlflow.environment_variables import MLFLOW_RUN_ID

from carnn_pyfunc import data
from carnn_pyfunc.config import TrainConfig
from carnn_pyfunc.metrics import INTERVAL_LEVEL, interval_metrics, regression_metrics
from carnn_pyfunc.model.bundle import log_carnn_model
from carnn_pyfunc.monitoring.profile import build_profile
from carnn_pyfunc.training import plots
from carnn_pyfunc.training.extra import log_extra, read_extra
from carnn_pyfunc.training.fit import fit_model

logger = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class TrainResult:
    run_id: str
    experiment_id: str
    model_uri: str  # models:/name/version when registered, else the run's model URI
    registered_version: str | None
    metrics: dict[str, float]
    extra: dict[str, int] = field(default_factory=dict)  # --extra-data: rows added, dropped


class MlflowEpochLogger(keras.callbacks.Callback):
    """Keras callback: per-epoch metrics to MLflow (batched writes) and a progress line."""

    def __init__(self, run_id: str, epochs: int, every: int = 10) -> None:
        super().__init__()
        self.client = mlflow.MlflowClient()
        self.run_id, self.epochs, self.every = run_id, epochs, every
        self.pending: list[Metric] = []

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        now = int(time.time() * 1000)
        values = {k: float(v) for k, v in (logs or {}).items() if k != "learning_rate"}
        self.pending += [Metric(k, v, now, epoch) for k, v in values.items()]
        if epoch == 0 or (epoch + 1) % self.every == 0:
            self.flush()
            logger.info(
                "epoch %d/%d  %s",
                epoch + 1,
                self.epochs,
                "  ".join(f"{k} {v:.3f}" for k, v in sorted(values.items())),
            )

    def on_train_end(self, logs: dict | None = None) -> None:
        self.flush()

    def flush(self) -> None:
        if self.pending:
            self.client.log_batch(self.run_id, metrics=self.pending)
            self.pending = []


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=PACKAGE_DIR,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def run_training(config: TrainConfig, *, nested: bool = False) -> TrainResult:
    """Train, evaluate and log one run to the current tracking URI; register the model."""
    frame = data.load_auto_mpg(config.data_path)
    train, test = data.split(frame, test_size=config.test_size, seed=config.seed)
    extra = read_extra(config.extra_data, frame)  # None: no --extra-data

    if not MLFLOW_RUN_ID.get() and not nested:  # `mlflow run` chose the experiment already
        mlflow.set_experiment(config.experiment_name)
    with mlflow.start_run(nested=nested) as run:
        run_id = run.info.run_id
        logger.info("run %s: training on %d cars, testing on %d", run_id, len(train), len(test))
        mlflow.log_params(asdict(config))
        mlflow.set_tags(_lineage_tags(config.data_path))
        _log_datasets(config.data_path, {"training": train, "testing": test})
        if extra is not None:  # labelled served cars: into training, never into the test split
            log_extra(config.extra_data, extra)
            train = extra.added_to(train)

        fitted = fit_model(config, train, [MlflowEpochLogger(run_id, config.epochs)])
        mlflow.log_params(
            {"n_features": fitted.contract.n_features, "n_train": len(train), "n_test": len(test)}
        )
        predicted, low, high = fitted.predict_interval(test, INTERVAL_LEVEL)
        actual = test[data.TARGET].to_numpy(dtype=np.float64)
        metrics = {f"test_{k}": v for k, v in regression_metrics(actual, predicted).items()}
        metrics.update({f"test_{k}": v for k, v in interval_metrics(actual, low, high).items()})
        metrics["epochs_trained"] = float(len(fitted.history["loss"]))
        metrics["best_val_mae"] = float(min(fitted.history["val_mae"]))
        mlflow.log_metrics(metrics)
        _log_figures(plots.training_figures(fitted.history, actual, predicted))
        model_info = log_carnn_model(
            fitted.network,
            fitted.flatbuffer,
            fitted.contract,
            fitted.calibration,
            check_features=fitted.contract.transform(train),
            input_example=test.drop(columns=[data.TARGET]).head(3),
            registered_model_name=config.registered_model_name,
            profile=build_profile(train, fitted.contract, metrics | {"level": INTERVAL_LEVEL}),
        )

    # A new version has no stage tag: the registry reads that as a candidate.
    version = model_info.registered_model_version
    model_uri = (
        f"models:/{config.registered_model_name}/{version}"
        if version is not None
        else model_info.model_uri
    )
    return TrainResult(
        run_id=run_id,
        experiment_id=run.info.experiment_id,
        model_uri=model_uri,
        registered_version=None if version is None else str(version),
        metrics=metrics,
        extra=extra.counts() if extra is not None else {},
    )


def _log_figures(figures: dict) -> None:
    with tempfile.TemporaryDirectory(prefix="carnn-plots-") as tmp:
        for name, figure in figures.items():
            figure.savefig(Path(tmp) / name, dpi=110, bbox_inches="tight")
            mlflow.log_artifact(str(Path(tmp) / name), artifact_path="plots")


def _log_datasets(data_path: str, splits: dict[str, pd.DataFrame]) -> None:
    """Each split as an MLflow dataset input (with its digest) sourced from the data file."""
    source = str(Path(data_path).resolve())
    with warnings.catch_warnings():
        # MLflow registers its local-file source class twice and warns that it is ambiguous.
        warnings.filterwarnings("ignore", message="The specified dataset source can be")
        for context, frame in splits.items():
            dataset = mlflow.data.from_pandas(
                frame, source=source, targets=data.TARGET, name=f"auto-mpg-{context}"
            )
            mlflow.log_input(dataset, context=context)


def _lineage_tags(data_path: str) -> dict[str, str]:
    tags = {data.SHA256_TAG: data.file_sha256(data_path), "data_file": Path(data_path).name}
    commit = _git_commit()
    if commit:
        tags["git_commit"] = commit
    return tags
