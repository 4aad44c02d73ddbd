"""Regression metrics, shared by training, cross-validation and promotion (no TensorFlow here)."""

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
