"""The gates a version must pass, scored on held-out cars recomputed from the data file.

A version's held-out cars are recomputed from the data file and its run's logged ``seed`` and
``test_size`` (the file's digest must match the run's ``data_sha256`` tag), so promotion scores
every version on cars it never trained on, and two versions on the cars held out by both.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

import mlflow
import numpy as np
import pandas as pd

from carnn_pyfunc import data
from carnn_pyfunc.metrics import regression_metrics
from carnn_pyfunc.registry.fresh_check import answers_in_fresh_process
from carnn_pyfunc.registry.stages import PromotionRefused

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Gates:
    """The absolute gates for staging and what the comparisons are computed on."""

    max_mae: float = 2.5  # MPG; Ridge regression scores ~2.6 in cross-validation
    min_eval_rows: int = 30  # fewest shared held-out cars a production comparison may rest on
    data_path: str = str(data.DEFAULT_DATA_PATH)
    fresh_process_timeout_s: float = 300.0


class HeldOutScorer:
    """Scores versions of one registered model on their held-out cars."""

    def __init__(self, client: mlflow.MlflowClient, name: str, gates: Gates) -> None:
        self.client, self.name, self.gates = client, name, gates
        self._models: dict[str, mlflow.pyfunc.PyFuncModel] = {}

    @functools.cached_property
    def frame(self) -> pd.DataFrame:
        return data.load_auto_mpg(self.gates.data_path)

    @functools.cached_property
    def data_sha256(self) -> str:
        return data.file_sha256(self.gates.data_path)

    def held_out(self, version: str) -> np.ndarray:
        """Positions in the data file of the cars the version was NOT trained on."""
        run_id = self.client.get_model_version(self.name, version).run_id
        if not run_id:
            raise PromotionRefused(f"version {version} has no training run to recompute its split")
        run = self.client.get_run(run_id)
        try:
            seed, test_size = int(run.data.params["seed"]), float(run.data.params["test_size"])
        except KeyError as err:
            raise PromotionRefused(
                f"version {version}: its run {run_id} did not log the parameter {err.args[0]!r}, "
                "so its held-out split cannot be recomputed"
            ) from None
        recorded, actual = run.data.tags.get(data.SHA256_TAG), self.data_sha256
        if recorded != actual:
            raise PromotionRefused(
                f"version {version} was trained on data with sha256 {recorded}, but "
                f"{self.gates.data_path} has sha256 {actual}: its held-out split cannot be "
                "recomputed from this file (pass the file it was trained on with --data-path)"
            )
        _, test = data.split_positions(len(self.frame), test_size=test_size, seed=seed)
        return np.sort(test)

    def score(self, version: str, positions: np.ndarray) -> dict[str, float]:
        """MAE, RMSE, R² and the share of finite predictions of the version on those rows."""
        rows = self.frame.iloc[positions]
        predicted = self.predict(version, rows.drop(columns=[data.TARGET]))
        finite = np.isfinite(predicted)
        actual = rows[data.TARGET].to_numpy(dtype=np.float64)
        metrics = regression_metrics(actual[finite], predicted[finite]) if finite.any() else {}
        return {**metrics, "finite_share": float(finite.mean()), "n_rows": float(len(rows))}

    def predict(self, version: str, records: pd.DataFrame) -> np.ndarray:
        """The version's MPG for raw records (its model loaded once)."""
        if version not in self._models:
            self._models[version] = mlflow.pyfunc.load_model(f"models:/{self.name}/{version}")
        return self._models[version].predict(records)["mpg"].to_numpy(dtype=np.float64)

    def check_gates(self, version: str) -> tuple[str, dict[str, float]]:
        """The absolute gates: (why it passes, the metrics looked at), or PromotionRefused."""
        metrics = self.score(version, self.held_out(version))
        if metrics["finite_share"] < 1.0:
            raise PromotionRefused(
                f"version {version}: {1 - metrics['finite_share']:.1%} of its predictions on its "
                "held-out cars are not finite"
            )
        if metrics["mae"] > self.gates.max_mae:
            raise PromotionRefused(
                f"version {version}: test MAE {metrics['mae']:.3f} MPG on its "
                f"{metrics['n_rows']:.0f} held-out cars is above the gate max_mae "
                f"{self.gates.max_mae:g}"
            )
        uri = f"models:/{self.name}/{version}"
        rows = answers_in_fresh_process(uri, timeout_s=self.gates.fresh_process_timeout_s)
        logger.info("version %s loads in a fresh process and answers %d rows", version, rows)
        why = (
            f"passes the gates: test MAE {metrics['mae']:.3f} <= {self.gates.max_mae:g} on its "
            "held-out cars, all finite, loads and answers in a fresh process"
        )
        return why, {
            "test_mae": metrics["mae"],
            "test_rmse": metrics["rmse"],
            "n_rows": metrics["n_rows"],
            "max_mae": self.gates.max_mae,
        }

    def compare(self, version: str, production: str) -> tuple[bool, str, dict[str, float]]:
        """Does ``version`` beat ``production`` on the cars held out by both?"""
        shared = np.intersect1d(self.held_out(version), self.held_out(production))
        if len(shared) < self.gates.min_eval_rows:
            why = (
                f"only {len(shared)} cars are held out by both version {version} and production "
                f"version {production} (min_eval_rows {self.gates.min_eval_rows}): train with "
                "the same seed and test size to compare them"
            )
            return False, why, {"n_rows": float(len(shared))}
        new, old = self.score(version, shared), self.score(production, shared)
        metrics = {
            "candidate_mae": new["mae"],
            "production_mae": old["mae"],
            "candidate_rmse": new["rmse"],
            "production_rmse": old["rmse"],
            "production_version": float(production),
            "n_rows": float(len(shared)),
        }
        versus = (
            f"MAE {new['mae']:.3f} vs {old['mae']:.3f} MPG for production version {production} "
            f"on the same {len(shared)} held-out cars"
        )
        if new["finite_share"] < 1.0:
            return False, f"version {version} has non-finite predictions", metrics
        if new["mae"] < old["mae"]:
            return True, f"beats production: {versus}", metrics
        return False, f"does not beat production: {versus}", metrics
