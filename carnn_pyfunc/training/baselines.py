"""The scikit-learn baselines cross-validation compares the network with: at their defaults, and
tuned with Optuna inside each training fold (never looking at the fold's held-out cars).

Every baseline is fitted on the network's contract features (the contract fitted inside the
fold), or the columns of them that suit it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
from sklearn.linear_model import Ridge
from sklearn.model_selection import KFold

from carnn_pyfunc import data
from carnn_pyfunc.contract import FeatureContract, fit_contract

logger = logging.getLogger(__name__)

# (train frame, test frame, fold seed) -> predicted MPG for the test frame
FitPredict = Callable[[pd.DataFrame, pd.DataFrame, int], object]


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
    """A scikit-learn regressor on the contract features (or the ``columns`` of them)."""

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


def _forest(trial, seed: int):
    return RandomForestRegressor(
        n_estimators=trial.suggest_int("n_estimators", 100, 500, step=50),
        max_depth=trial.suggest_categorical("max_depth", [None, 6, 10, 16]),
        min_samples_leaf=trial.suggest_int("min_samples_leaf", 1, 8),
        max_features=trial.suggest_float("max_features", 0.2, 1.0),
        random_state=seed,
        n_jobs=-1,
    )


def _boosting(trial, seed: int):
    return HistGradientBoostingRegressor(
        learning_rate=trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
        max_iter=trial.suggest_int("max_iter", 100, 800, step=50),
        max_leaf_nodes=trial.suggest_int("max_leaf_nodes", 4, 48),
        min_samples_leaf=trial.suggest_int("min_samples_leaf", 3, 40),
        l2_regularization=trial.suggest_float("l2_regularization", 1e-6, 1.0, log=True),
        random_state=seed,
    )


# name -> (an estimator from an Optuna trial and a seed, the contract columns it is fitted on)
TUNED: dict[str, tuple[Callable, Callable | None]] = {
    "random_forest_tuned": (_forest, tree_columns),
    "hist_gradient_boosting_tuned": (_boosting, tree_columns),
}


def tuned_fit_predict(
    make_estimator: Callable, *, min_maker_count: int, columns: Callable | None, trials: int
) -> FitPredict:
    """A baseline whose hyperparameters Optuna (seeded TPE, ``trials`` trials) picks by 3-fold
    CV MAE on the fold's TRAINING rows only; the best is then fitted on all of them."""
    import optuna

    def fit_predict(train: pd.DataFrame, test: pd.DataFrame, seed: int) -> np.ndarray:
        contract = fit_contract(train, min_maker_count=min_maker_count)
        used = slice(None) if columns is None else columns(contract)
        x, y = contract.transform(train)[:, used], train[data.TARGET].to_numpy()
        inner = list(KFold(n_splits=3, shuffle=True, random_state=seed).split(x))

        def objective(trial) -> float:
            errors = []
            for fit_rows, score_rows in inner:
                estimator = make_estimator(trial, seed).fit(x[fit_rows], y[fit_rows])
                errors.append(np.mean(np.abs(estimator.predict(x[score_rows]) - y[score_rows])))
            return float(np.mean(errors))

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))
        study.optimize(objective, n_trials=trials)
        best = make_estimator(optuna.trial.FixedTrial(study.best_params), seed).fit(x, y)
        logger.info("tuned %s: inner cv_mae %.3f %s", type(best).__name__, study.best_value,
                    study.best_params)  # fmt: skip
        return np.asarray(best.predict(contract.transform(test)[:, used]), dtype=np.float64)

    return fit_predict
