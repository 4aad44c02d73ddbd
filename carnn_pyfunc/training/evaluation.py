"""Repeated k-fold cross-validation of the network and of scikit-learn baselines on identical folds.

Every model is fitted with the feature contract fitted inside each fold (never on the fold's test
rows), and scored with the same metric names, so MLflow's compare view lines them up.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
from sklearn.linear_model import Ridge
from sklearn.model_selection import RepeatedKFold

from carnn_pyfunc import data
from carnn_pyfunc.config import TrainConfig
from carnn_pyfunc.contract import FeatureContract, fit_contract
from carnn_pyfunc.metrics import regression_metrics
from carnn_pyfunc.training import plots
from carnn_pyfunc.training.fit import fit_model

logger = logging.getLogger(__name__)

NETWORK = "network"
METRICS = ("mae", "rmse", "r2")

# (train frame, test frame, fold seed) -> predicted MPG for the test frame
FitPredict = Callable[[pd.DataFrame, pd.DataFrame, int], np.ndarray]


def cv_splits(n_rows: int, *, folds: int, repeats: int, seed: int) -> list[tuple[np.ndarray, ...]]:
    """Row positions (train, test) of each fold of each repeat; the same seed, the same folds."""
    if folds < 2 or repeats < 1:
        raise ValueError("folds must be at least 2 and repeats at least 1")
    splitter = RepeatedKFold(n_splits=folds, n_repeats=repeats, random_state=seed)
    return list(splitter.split(np.arange(n_rows)))


def network_fit_predict(config: TrainConfig) -> FitPredict:
    """The full training recipe (contract fitted on the fold's training rows) as a fit-predict."""

    def fit_predict(train: pd.DataFrame, test: pd.DataFrame, seed: int) -> np.ndarray:
        # scored through the compiled forward pass serving runs: evaluate what is served
        return fit_model(replace(config, seed=config.seed + seed), train).predict(test)

    return fit_predict


def tree_columns(contract: FeatureContract) -> list[int]:
    """The contract's features but the log and one-hot year columns, for tree ensembles.

    A tree splits on the year number itself and is blind to monotone transforms, so those columns
    carry nothing new for it and only dilute its split choices (random forest, 5-fold CV:
    1.861 without them, 1.884 with them).
    """
    return [
        j for j, name in enumerate(contract.feature_names) if not name.startswith(("log_", "year_"))
    ]


def baseline_fit_predict(
    make_estimator: Callable[[int], object],
    *,
    min_maker_count: int,
    columns: Callable[[FeatureContract], list[int]] | None = None,
) -> FitPredict:
    """A scikit-learn regressor on the network's contract features (or the ``columns`` of them
    that suit it), the contract fitted inside the fold as for the network."""

    def fit_predict(train: pd.DataFrame, test: pd.DataFrame, seed: int) -> np.ndarray:
        contract = fit_contract(train, min_maker_count=min_maker_count)
        used = slice(None) if columns is None else columns(contract)
        estimator = make_estimator(seed)
        estimator.fit(contract.transform(train)[:, used], train[data.TARGET].to_numpy())
        return np.asarray(estimator.predict(contract.transform(test)[:, used]), dtype=np.float64)

    return fit_predict


# name -> (estimator for a fold seed, the contract columns it is fitted on; None: all)
BASELINES: dict[str, tuple[Callable[[int], object], Callable | None]] = {
    "ridge": (lambda seed: Ridge(alpha=1.0), None),
    "random_forest": (
        lambda seed: RandomForestRegressor(n_estimators=300, random_state=seed, n_jobs=-1),
        tree_columns,
    ),
    "hist_gradient_boosting": (
        lambda seed: HistGradientBoostingRegressor(random_state=seed),
        tree_columns,
    ),
}


def cross_validate(
    fit_predict: FitPredict, frame: pd.DataFrame, splits: list[tuple[np.ndarray, ...]]
) -> list[dict[str, float]]:
    """Metrics of each fold."""
    results = []
    for fold, (train_rows, test_rows) in enumerate(splits):
        train, test = frame.iloc[train_rows], frame.iloc[test_rows]
        predicted = fit_predict(train.reset_index(drop=True), test.reset_index(drop=True), fold)
        results.append(regression_metrics(test[data.TARGET].to_numpy(), predicted))
    return results


def summarise(per_fold: list[dict[str, float]]) -> dict[str, float]:
    """``cv_<metric>`` (mean over folds) and ``cv_<metric>_std`` for each metric."""
    summary = {}
    for metric in METRICS:
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
    config: TrainConfig, *, folds: int, repeats: int, seed: int
) -> dict[str, dict[str, float]]:
    """Cross-validate the network and the baselines in one parent run with a nested run each."""
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
    }
    with mlflow.start_run(run_name="evaluate", nested=bool(mlflow.active_run())) as parent:
        mlflow.log_params({"folds": folds, "repeats": repeats, "cv_seed": seed})
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
        })  # fmt: skip
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
