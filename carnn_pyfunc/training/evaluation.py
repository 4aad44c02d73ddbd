"""Repeated k-fold cross-validation of the network and of scikit-learn baselines on identical folds.

Every model is fitted with the feature contract fitted inside each fold (never on the fold's test
rows), and scored with the same metric names, so MLflow's compare view lines them up.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from sklearn.model_selection import RepeatedKFold

from carnn_pyfunc import data
from carnn_pyfunc.config import TrainConfig
from carnn_pyfunc.metrics import INTERVAL_LEVEL, interval_metrics, regression_metrics
from carnn_pyfunc.model.intervals import conformal_quantile
from carnn_pyfunc.training import plots
from carnn_pyfunc.training.baselines import (
    BASELINES,
    TUNED,
    FitPredict,
    baseline_fit_predict,
    tuned_fit_predict,
)
from carnn_pyfunc.training.fit import fit_model

logger = logging.getLogger(__name__)

NETWORK = "network"


def cv_splits(n_rows: int, *, folds: int, repeats: int, seed: int) -> list[tuple[np.ndarray, ...]]:
    """Row positions (train, test) of each fold of each repeat; the same seed, the same folds."""
    if folds < 2 or repeats < 1:
        raise ValueError("folds must be at least 2 and repeats at least 1")
    splitter = RepeatedKFold(n_splits=folds, n_repeats=repeats, random_state=seed)
    return list(splitter.split(np.arange(n_rows)))


def network_fit_predict(config: TrainConfig) -> FitPredict:
    """The full training recipe (contract fitted on the fold's training rows) as a fit-predict:
    the MPG, the 90% prediction interval served with it, and a constant-width interval from the
    same calibration (the comparison for the interval's width)."""

    def fit_predict(train: pd.DataFrame, test: pd.DataFrame, seed: int) -> Predicted:
        # scored through the compiled forward pass serving runs: evaluate what is served
        fitted = fit_model(replace(config, seed=config.seed + seed), train)
        mpg, low, high = fitted.predict_interval(test, INTERVAL_LEVEL)
        half = conformal_quantile(fitted.calibration.absolute, INTERVAL_LEVEL)
        return Predicted(
            mpg, {"interval": (low, high), "constant_interval": (mpg - half, mpg + half)}
        )

    return fit_predict


@dataclass(frozen=True)
class Predicted:
    """A fold's predictions, with intervals (name -> (low, high)) where the model gives them."""

    mpg: np.ndarray
    intervals: dict[str, tuple[np.ndarray, np.ndarray]]


def cross_validate(
    fit_predict: FitPredict, frame: pd.DataFrame, splits: list[tuple[np.ndarray, ...]]
) -> list[dict[str, float]]:
    """Metrics of each fold (and the coverage and width of each interval a model gives)."""
    results = []
    for fold, (train_rows, test_rows) in enumerate(splits):
        train, test = frame.iloc[train_rows], frame.iloc[test_rows]
        predicted = fit_predict(train.reset_index(drop=True), test.reset_index(drop=True), fold)
        actual = test[data.TARGET].to_numpy()
        if not isinstance(predicted, Predicted):
            predicted = Predicted(np.asarray(predicted), {})
        metrics = regression_metrics(actual, predicted.mpg)
        for name, (low, high) in predicted.intervals.items():
            for key, value in interval_metrics(actual, low, high).items():
                metrics[key.replace("interval", name)] = value
        results.append(metrics)
    return results


def summarise(per_fold: list[dict[str, float]]) -> dict[str, float]:
    """``cv_<metric>`` (mean over folds) and ``cv_<metric>_std`` for each metric."""
    summary = {}
    for metric in per_fold[0]:
        values = np.array([fold[metric] for fold in per_fold])
        summary[f"cv_{metric}"] = float(values.mean())
        summary[f"cv_{metric}_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return summary


def log_cv_run(name: str, params: dict, per_fold: list[dict[str, float]]) -> dict[str, float]:
    """One nested run: the model's parameters, each fold's metrics (as steps), the summary."""
    summary = summarise(per_fold)
    with mlflow.start_run(run_name=name, nested=True):
        mlflow.set_tag("model", name)
        mlflow.log_params(params)
        for fold, metrics in enumerate(per_fold):
            mlflow.log_metrics({f"fold_{k}": v for k, v in metrics.items()}, step=fold)
        mlflow.log_metrics(summary)
    return summary


def run_evaluation(
    config: TrainConfig, *, folds: int, repeats: int, seed: int, baseline_trials: int = 20
) -> dict[str, dict[str, float]]:
    """Cross-validate the network and the baselines (at their defaults, and tuned with
    ``baseline_trials`` Optuna trials inside each training fold) in one parent run with a nested
    run each."""
    frame = data.load_auto_mpg(config.data_path)
    splits = cv_splits(len(frame), folds=folds, repeats=repeats, seed=seed)
    models: dict[str, tuple[FitPredict, dict]] = {
        NETWORK: (network_fit_predict(config), asdict(config)),
        **{
            name: (
                baseline_fit_predict(make, min_maker_count=config.min_maker_count, columns=columns),
                _estimator_params(make(seed), columns),
            )
            for name, (make, columns) in BASELINES.items()
        },
        **{
            name: (
                tuned_fit_predict(make, min_maker_count=config.min_maker_count, columns=columns,
                                  trials=baseline_trials),
                {"tuned_with": "optuna TPE inside each training fold", "trials": baseline_trials,
                 "inner_folds": 3, "features": columns.__name__},
            )
            for name, (make, columns) in TUNED.items()
        },
    }  # fmt: skip
    with mlflow.start_run(run_name="evaluate", nested=bool(mlflow.active_run())) as parent:
        mlflow.log_params({"folds": folds, "repeats": repeats, "cv_seed": seed,
                           "baseline_trials": baseline_trials})  # fmt: skip
        mlflow.set_tags({data.SHA256_TAG: data.file_sha256(config.data_path)})
        summaries = {}
        for name, (fit_predict, params) in models.items():
            logger.info("cross-validating %s on %d folds x %d repeats", name, folds, repeats)
            summaries[name] = log_cv_run(name, params, cross_validate(fit_predict, frame, splits))
            logger.info("%s: cv_mae %.3f ± %.3f", name, summaries[name]["cv_mae"],
                        summaries[name]["cv_mae_std"])  # fmt: skip
        best_baseline = min((n for n in summaries if n != NETWORK),
                            key=lambda n: summaries[n]["cv_mae"])  # fmt: skip
        mlflow.log_metrics({
            "network_cv_mae": summaries[NETWORK]["cv_mae"],
            "best_baseline_cv_mae": summaries[best_baseline]["cv_mae"],
            "network_gain_over_best_baseline": 1 - summaries[NETWORK]["cv_mae"]
            / summaries[best_baseline]["cv_mae"],
            **{k: v for k, v in summaries[NETWORK].items() if "interval" in k},
        })  # fmt: skip
        mlflow.set_tag("best_baseline", best_baseline)
        with tempfile.TemporaryDirectory(prefix="carnn-cv-") as tmp:
            summary_path = Path(tmp) / "cv_summary.json"
            summary_path.write_text(json.dumps(summaries, indent=2) + "\n")
            mlflow.log_artifact(str(summary_path))
            figure = plots.cv_comparison(summaries)
            figure.savefig(Path(tmp) / "cv_comparison.png", dpi=110, bbox_inches="tight")
            mlflow.log_artifact(str(Path(tmp) / "cv_comparison.png"))
        logger.info("evaluation run %s", parent.info.run_id)
    return summaries


def _estimator_params(estimator, columns: Callable | None) -> dict[str, object]:
    params = {"estimator": type(estimator).__name__}
    params["features"] = "all" if columns is None else columns.__name__
    params.update({k: v for k, v in estimator.get_params().items() if v is not None})
    return params
