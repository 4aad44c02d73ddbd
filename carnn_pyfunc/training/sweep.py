"""Hyperparameter search with Optuna: each trial a nested run scored by cross-validated MAE.

Optuna because its search space is ordinary Python (define-by-run), its TPE sampler is seeded and
reproducible, a study takes both a trial count and a time budget, and it is actively maintained;
hyperopt's space DSL and its stalled releases weigh against it.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, replace

import mlflow

from carnn_pyfunc import data
from carnn_pyfunc.config import LOSSES, SCHEDULES, TARGETS, TrainConfig
from carnn_pyfunc.training.evaluation import (
    cross_validate,
    cv_splits,
    log_cv_run,
    network_fit_predict,
)
from carnn_pyfunc.training.run import TrainResult, run_training

logger = logging.getLogger(__name__)


def suggest(trial, base: TrainConfig) -> TrainConfig:
    """The search space: architecture and training settings around the base config."""
    return replace(
        base,
        hidden_units=trial.suggest_categorical("hidden_units", [16, 32, 64, 128]),
        hidden_layers=trial.suggest_int("hidden_layers", 1, 3),
        learning_rate=trial.suggest_float("learning_rate", 3e-4, 1e-2, log=True),
        lr_schedule=trial.suggest_categorical("lr_schedule", list(SCHEDULES)),
        batch_size=trial.suggest_categorical("batch_size", [16, 32, 64]),
        dropout=trial.suggest_float("dropout", 0.0, 0.3),
        l2=trial.suggest_float("l2", 1e-6, 1e-2, log=True),
        loss=trial.suggest_categorical("loss", list(LOSSES)),
        target=trial.suggest_categorical("target", list(TARGETS)),
    )


def run_sweep(
    base: TrainConfig, *, trials: int, timeout_s: float, folds: int, seed: int
) -> tuple[TrainConfig, float, TrainResult]:
    """Search, then train, log and register the best configuration as a new candidate version."""
    import optuna

    frame = data.load_auto_mpg(base.data_path)
    splits = cv_splits(len(frame), folds=folds, repeats=1, seed=seed)

    def objective(trial) -> float:
        config = suggest(trial, base)
        per_fold = cross_validate(network_fit_predict(config), frame, splits)
        summary = log_cv_run(f"trial-{trial.number}", asdict(config), per_fold)
        logger.info("trial %d: cv_mae %.3f  %s", trial.number, summary["cv_mae"], trial.params)
        return summary["cv_mae"]

    with mlflow.start_run(run_name="sweep"):
        mlflow.log_params({"trials": trials, "timeout_s": timeout_s, "folds": folds,
                           "cv_seed": seed, "sampler": "TPE"})  # fmt: skip
        study = optuna.create_study(
            direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed)
        )
        study.optimize(objective, n_trials=trials, timeout=timeout_s)
        best = suggest(optuna.trial.FixedTrial(study.best_params), base)
        mlflow.log_params({f"best_{k}": v for k, v in study.best_params.items()})
        mlflow.log_metrics({"best_cv_mae": study.best_value, "trials_run": len(study.trials)})
        logger.info("best of %d trials: cv_mae %.3f", len(study.trials), study.best_value)
        result = run_training(best, nested=True)
    return best, study.best_value, result
