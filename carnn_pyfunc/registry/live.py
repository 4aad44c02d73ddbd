"""The live evidence: a version and production scored on the same labelled served cars.

The cars are the prediction log joined with the true MPG figures that came back for it (see
:mod:`carnn_pyfunc.monitoring.labelled`); they arrive here as a frame, so the registry reads no
log itself. The rule that judges the scores is :func:`.stages.live_verdict`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException

from carnn_pyfunc import data
from carnn_pyfunc.registry import stages
from carnn_pyfunc.registry.gates import HeldOutScorer
from carnn_pyfunc.registry.stages import PromotionRefused

DEFAULT_MIN_ROWS = 30  # fewest labelled served cars the live gate judges by
DEFAULT_TOLERANCE = 0.0  # MPG a candidate's live MAE may exceed production's by


@dataclass(frozen=True, eq=False)
class LiveWindow:
    """Labelled served cars (the raw fields and the true ``mpg``) and how they are judged."""

    rows: pd.DataFrame
    window: str = "the labelled window"  # how reasons name it, e.g. "ROOT since 2026-12-01"
    min_rows: int = DEFAULT_MIN_ROWS
    tolerance: float = DEFAULT_TOLERANCE

    def __post_init__(self) -> None:
        if self.min_rows < 1:
            raise ValueError(f"min_rows: expected at least 1, got {self.min_rows}")
        if not self.tolerance >= 0:
            raise ValueError(f"tolerance: expected 0 or more MPG, got {self.tolerance}")
        if data.TARGET not in self.rows.columns:
            raise ValueError(f"the labelled rows have no {data.TARGET!r} column")


def _figures(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    finite = np.isfinite(predicted)
    error = np.abs(predicted[finite] - actual[finite])
    mae = float(error.mean()) if finite.any() else float("nan")
    return {"mae": mae, "finite_share": float(finite.mean()), "n_rows": float(len(actual))}


def compare_live(
    scorer: HeldOutScorer, live: LiveWindow, version: str, production: str
) -> tuple[bool | None, str, dict[str, float]]:
    """(no worse than production?, why, metrics); None instead of a verdict: too few rows."""
    skipped = stages.live_skipped(len(live.rows), live.min_rows, live.window)
    if skipped is not None:
        return skipped
    records = live.rows.drop(columns=[data.TARGET])
    actual = live.rows[data.TARGET].to_numpy(dtype=np.float64)
    try:
        new, old = scorer.predict(version, records), scorer.predict(production, records)
    except MlflowException as err:
        raise PromotionRefused(
            f"the labelled served cars in {live.window} could not be scored: {err.message}"
        ) from None
    # Cars production had no finite answer for say nothing about the candidate: judged without.
    usable = np.isfinite(old)
    skipped = stages.live_skipped(int(usable.sum()), live.min_rows, live.window)
    if skipped is not None:
        return skipped
    return stages.live_verdict(
        version,
        production,
        _figures(actual[usable], new[usable]),
        _figures(actual[usable], old[usable]),
        tolerance=live.tolerance,
        window=live.window,
    )
