"""Regression and interval metrics, shared by training, cross-validation and promotion."""

from __future__ import annotations

import math

import numpy as np


def regression_metrics(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """MAE, RMSE and R² of predictions."""
    error = predicted - actual
    ss_res = float(np.sum(error**2))
    ss_tot = float(np.sum((actual - actual.mean()) ** 2))
    return {
        "mae": float(np.mean(np.abs(error))),
        "rmse": math.sqrt(ss_res / len(actual)),
        "r2": 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan"),
    }


INTERVAL_LEVEL = 0.9  # the level whose coverage and width runs and evaluations report


def interval_metrics(actual: np.ndarray, low: np.ndarray, high: np.ndarray) -> dict[str, float]:
    """Coverage (share of actual values inside [low, high]) and mean width in MPG."""
    inside = (actual >= low) & (actual <= high)
    return {"interval_coverage": float(inside.mean()), "interval_width": float(np.mean(high - low))}
