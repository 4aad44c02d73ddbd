"""One tracked training run: fit, evaluate, log everything, log the pyfunc model, register it."""

from __future__ import annotations

import logging
import math
import subprocess
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import mlflow
import numpy as np
import pandas as pd
from mlflow.entities import Metric
from mlflow.environment_variables import MLFLOW_RUN_ID
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema

from carnn_pyfunc import data, plots
from carnn_pyfunc.config import TrainConfig
from carnn_pyfunc.features import (
    INPUT_FIELDS,
    REQUIRED_FIELDS,
    FeatureContract,
    fit_contract,
    library_versions,
)
from carnn_pyfunc.metrics import regression_metrics
from carnn_pyfunc.network import assemble, build_network, encode_target, pack_targets
from carnn_pyfunc.pyfunc_model import (
    CONTRACT_ARTIFACT,
    DEFAULT_MODEL_CONFIG,
    NETWORK_ARTIFACT,
    OUTPUT_COLUMN,
    SCALER_ARTIFACT,
    compile_forward,
)
from carnn_pyfunc.registry import CANDIDATE, STAGE_TAG

logger = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent
MODEL_CODE = PACKAGE_DIR / "model_code.py"
MODEL_NAME = "model"  # the model's name within its run


@dataclass(frozen=True)
class TrainResult:
    run_id: str
    experiment_id: str
    model_uri: str  # models:/name/version when registered, else the run's model URI
    registered_version: str | None
    metrics: dict[str, float]


def input_signature() -> ModelSignature:
    """Raw car records in (five required fields, three optional), ``mpg`` out."""
    columns = [
        ColSpec("string" if name == "name" else "double", name, required=name in REQUIRED_FIELDS)
        for name in INPUT_FIELDS
    ]
    return ModelSignature(
        inputs=Schema(columns), outputs=Schema([ColSpec("double", OUTPUT_COLUMN)])
    )


def pip_requirements() -> list[str]:
    """Exact pins of the libraries the model was trained with."""
    return [f"{lib}=={version}" for lib, version in library_versions().items()]


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


def fit_network(
    config: TrainConfig,
    train: pd.DataFrame,
    contract: FeatureContract,
    callbacks: list | None = None,
) -> tuple[keras.Model, dict[str, list[float]]]:
    """Fit ``config.ensemble_size`` members on ``train`` and assemble ONE inference network.

    The members train side by side in one Keras model (see :func:`build_network`), each from its
    own initial weights and on all of ``train`` but its own seeded validation part, which scores
    it every epoch. With ``config.patience`` > 0, early stopping watches the members' summed
    validation loss and restores the best epoch. Returns the network (raw features in, MPG out)
    and the per-epoch history: ``loss``/``mae`` on the rows the members learn from,
    ``val_loss``/``val_mae`` on the rows they hold out (``mae`` in MPG, per row the mean over the
    members it counts for).
    """
    members = config.ensemble_size
    held_out = np.zeros((len(train), members), dtype=np.float32)
    for member in range(members):
        _, validation_rows = data.split_positions(
            len(train), test_size=config.validation_size, seed=config.seed + 1000 * member
        )
        held_out[validation_rows, member] = 1.0
    scored = held_out.any(axis=1)  # rows some member holds out
    features = contract.transform(train)
    target = encode_target(train[data.TARGET].to_numpy(), config.target)

    keras.utils.set_random_seed(config.seed)
    model = build_network(
        contract.n_features,
        members=members,
        hidden_units=config.hidden_units,
        hidden_layers=config.hidden_layers,
        dropout=config.dropout,
        l2=config.l2,
        learning_rate=config.learning_rate,
        lr_schedule=config.lr_schedule,
        steps=config.epochs * math.ceil(len(train) / config.batch_size),
        loss=config.loss,
        target=config.target,
    )
    callbacks = list(callbacks or [])
    if config.patience > 0:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=config.patience, restore_best_weights=True
            )
        )
    history = model.fit(
        features,
        pack_targets(target, 1.0 - held_out),
        validation_data=(features[scored], pack_targets(target[scored], held_out[scored])),
        epochs=config.epochs,
        batch_size=config.batch_size,
        shuffle=True,
        verbose=0,
        callbacks=callbacks,
    ).history
    logger.info("%d members: %d epochs, best val_mae %.3f", members, len(history["loss"]),
                min(history["val_mae"]))  # fmt: skip
    return assemble(model, config.target), history


def run_training(config: TrainConfig, *, nested: bool = False) -> TrainResult:
    """Train, evaluate and log one run to the current tracking URI; register the model."""
    frame = data.load_auto_mpg(config.data_path)
    train, test = data.split(frame, test_size=config.test_size, seed=config.seed)
    contract = fit_contract(train, min_maker_count=config.min_maker_count)

    if not MLFLOW_RUN_ID.get() and not nested:  # `mlflow run` chose the experiment already
        mlflow.set_experiment(config.experiment_name)
    with mlflow.start_run(nested=nested) as run:
        run_id = run.info.run_id
        logger.info("run %s: training on %d cars, testing on %d", run_id, len(train), len(test))
        mlflow.log_params(asdict(config))
        mlflow.log_params(
            {"n_features": contract.n_features, "n_train": len(train), "n_test": len(test)}
        )
        mlflow.set_tags(_lineage_tags(config.data_path))
        _log_datasets(config.data_path, {"training": train, "testing": test})

        epoch_logger = MlflowEpochLogger(run_id, config.epochs)
        network, history = fit_network(config, train, contract, [epoch_logger])

        forward = compile_forward(network, contract.n_features)
        predicted = forward(contract.transform(test)).astype(np.float64)
        actual = test[data.TARGET].to_numpy(dtype=np.float64)
        metrics = {f"test_{k}": v for k, v in regression_metrics(actual, predicted).items()}
        metrics["epochs_trained"] = float(len(history["loss"]))
        metrics["best_val_mae"] = float(min(history["val_mae"]))
        mlflow.log_metrics(metrics)

        with tempfile.TemporaryDirectory(prefix="carnn-") as tmp:
            tmp_dir = Path(tmp)
            for name, figure in plots.training_figures(history, actual, predicted).items():
                figure.savefig(tmp_dir / name, dpi=110, bbox_inches="tight")
                mlflow.log_artifact(str(tmp_dir / name), artifact_path="plots")
            artifacts = {
                NETWORK_ARTIFACT: tmp_dir / "model.keras",
                SCALER_ARTIFACT: tmp_dir / "scaler.joblib",
                CONTRACT_ARTIFACT: tmp_dir / "contract.json",
            }
            network.save(artifacts[NETWORK_ARTIFACT])
            contract.save(artifacts[CONTRACT_ARTIFACT], artifacts[SCALER_ARTIFACT])
            mlflow.log_artifact(str(artifacts[CONTRACT_ARTIFACT]))
            model_info = mlflow.pyfunc.log_model(
                name=MODEL_NAME,
                python_model=str(MODEL_CODE),
                artifacts={k: str(v) for k, v in artifacts.items()},
                code_paths=[str(PACKAGE_DIR)],
                signature=input_signature(),
                input_example=test.drop(columns=[data.TARGET]).head(3),
                pip_requirements=pip_requirements(),
                model_config=DEFAULT_MODEL_CONFIG,
                registered_model_name=config.registered_model_name or None,
            )

    version = model_info.registered_model_version
    if version is not None:  # every new version starts as a candidate (see registry.py)
        mlflow.MlflowClient().set_model_version_tag(
            config.registered_model_name, str(version), STAGE_TAG, CANDIDATE
        )
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
    )


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
