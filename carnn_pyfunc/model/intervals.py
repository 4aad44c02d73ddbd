"""Prediction intervals by split conformal prediction on out-of-sample log residuals.

Each ensemble member holds out its own part of the training cars; the members' errors there,
``|log(actual) - log(predicted)|``, are residuals of a network that did not train on those cars.
Their conformal quantile ``q`` at a level gives the interval ``[mpg * exp(-q), mpg * exp(q)]``:
relative, so a thirsty V8 gets a wider interval in MPG than an economy car. (A member alone is a
little less accurate than the ensemble, so the intervals lean to the safe side.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

INTERVAL_PARAM = "interval"  # inference param: the level, in (0, 1); 0 or absent: no interval
LOW_COLUMN, HIGH_COLUMN = "mpg_low", "mpg_high"


def log_residuals(actual: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Sorted ``|log(actual) - log(predicted)|`` (a prediction at or below 0 counts as 0.001)."""
    residuals = np.abs(np.log(actual) - np.log(np.maximum(predicted, 1e-3)))
    return np.sort(residuals.astype(np.float64))


def conformal_quantile(scores: np.ndarray, level: float) -> float:
    """The ``ceil((n + 1) * level)``-th smallest score: covers a new car with probability at
    least ``level`` when cars are exchangeable; inf when there are too few scores for it."""
    if not 0 < level < 1:
        raise ValueError(f"{INTERVAL_PARAM}: {level!r} is not a level between 0 and 1")
    rank = math.ceil((len(scores) + 1) * level - 1e-9)  # n / (n + 1) itself: rank n
    return math.inf if rank > len(scores) else float(scores[rank - 1])


def highest_level(n_scores: int) -> float:
    """The largest level ``n`` scores give a finite interval at: ``n / (n + 1)``."""
    return n_scores / (n_scores + 1)


def interval(mpg: np.ndarray, scores: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) of each prediction at ``level``."""
    q = conformal_quantile(scores, level)
    return mpg * math.exp(-q), mpg * math.exp(q)


@dataclass(frozen=True)
class Calibration:
    """Out-of-sample residuals, sorted: ``log`` (what serving uses) and ``absolute`` in MPG (for
    the constant-width interval evaluation compares against)."""

    log: np.ndarray
    absolute: np.ndarray

    @classmethod
    def of(cls, actual: np.ndarray, predicted: np.ndarray) -> Calibration:
        return cls(log_residuals(actual, predicted), np.sort(np.abs(actual - predicted)))
