"""Live accuracy on the labelled rows of a window: pure functions on arrays.

MAE, RMSE and the prediction interval's coverage and width, each with a percentile bootstrap
confidence interval (rows resampled with replacement; the seed is a parameter, so a window's
figures are reproducible), held against the model's own test figures from its profile.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

BOOTSTRAP_CELLS = 4_000_000  # resampled values held in memory at once (blocks of resamples)


def _bootstrap(values: np.ndarray, stat, n_boot: int, seed: int, confidence: float):
    """Percentile interval of ``stat`` (a reduction along axis 1) over bootstrap resamples."""
    rng = np.random.default_rng(seed)
    n = values.size
    block = max(1, BOOTSTRAP_CELLS // max(n, 1))
    estimates = []
    for start in range(0, n_boot, block):
        draws = rng.integers(0, n, size=(min(block, n_boot - start), n))
        estimates.append(stat(values[draws]))
    estimates = np.concatenate(estimates)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(estimates, [tail, 100 - tail])
    return float(low), float(high)


def _mean(x: np.ndarray) -> np.ndarray:
    return x.mean(axis=-1)


def _root_mean(x: np.ndarray) -> np.ndarray:
    return np.sqrt(x.mean(axis=-1))


def live_accuracy(
    actual: np.ndarray,
    predicted: np.ndarray,
    low: np.ndarray | None = None,
    high: np.ndarray | None = None,
    *,
    seed: int = 0,
    n_boot: int = 1000,
    confidence: float = 0.95,
) -> dict[str, float]:
    """MAE, RMSE, interval coverage and width of labelled rows, each with ``_low``/``_high``
    bounds of a ``confidence`` bootstrap interval. Rows without a prediction are left out;
    coverage and width are over the rows that have an interval (``interval_labels``)."""
    actual = np.asarray(actual, dtype=np.float64)
    predicted = np.asarray(predicted, dtype=np.float64)
    scored = ~np.isnan(actual) & ~np.isnan(predicted)
    nan = float("nan")
    out: dict[str, float] = {"labels": float(scored.sum())}
    error = predicted[scored] - actual[scored]
    for key, values, stat in (("mae", np.abs(error), _mean), ("rmse", error**2, _root_mean)):
        if values.size:
            out[key] = float(stat(values[None, :])[0])
            bounds = _bootstrap(values, stat, n_boot, seed, confidence)
        else:
            out[key], bounds = nan, (nan, nan)
        out[f"{key}_low"], out[f"{key}_high"] = bounds
    out |= interval_accuracy(actual, low, high, seed=seed, n_boot=n_boot, confidence=confidence)
    return out


def interval_accuracy(actual, low, high, *, seed: int, n_boot: int, confidence: float) -> dict:
    """Coverage (with its bootstrap interval) and mean width of the rows with an interval."""
    nan = float("nan")
    empty = {"interval_labels": 0.0, "coverage": nan, "coverage_low": nan, "coverage_high": nan}
    if low is None or high is None:
        return empty | {"width": nan}
    low, high = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
    has = ~np.isnan(actual) & ~np.isnan(low) & ~np.isnan(high)
    if not has.any():
        return empty | {"width": nan}
    inside = ((actual[has] >= low[has]) & (actual[has] <= high[has])).astype(np.float64)
    coverage_low, coverage_high = _bootstrap(inside, _mean, n_boot, seed, confidence)
    return {
        "interval_labels": float(has.sum()),
        "coverage": float(inside.mean()),
        "coverage_low": coverage_low,
        "coverage_high": coverage_high,
        "width": float(np.mean(high[has] - low[has])),
    }


def against_test(live: dict[str, float], test: dict[str, float]) -> dict[str, float]:
    """Live figures over the model's test figures: ``mae_ratio``, ``rmse_ratio`` and
    ``coverage_gap`` (live minus test coverage); NaN where either side is missing."""
    nan = float("nan")

    def ratio(key: str) -> float:
        base = test.get(f"test_{key}")
        return live[key] / base if base else nan

    coverage = test.get("test_interval_coverage")
    return {
        "mae_ratio": ratio("mae"),
        "rmse_ratio": ratio("rmse"),
        "coverage_gap": live["coverage"] - coverage if coverage is not None else nan,
    }


def accuracy_over_time(labelled: pd.DataFrame, buckets: int = 12) -> pd.DataFrame:
    """MAE and coverage of labelled rows (columns ``time``, ``mpg``, ``label``, ``mpg_low``,
    ``mpg_high``) in ``buckets`` equal slices of their time span: columns start, labels, mae,
    coverage (NaN where a slice has no rows or no intervals)."""
    columns = ["start", "labels", "mae", "coverage"]
    if labelled.empty:
        return pd.DataFrame(columns=columns)
    times = pd.to_datetime(labelled["time"], utc=True)
    first, last = times.min(), times.max()
    span = (last - first) / buckets if last > first else pd.Timedelta(seconds=1)
    slot = ((times - first) / span).astype(int).clip(upper=buckets - 1)
    error = (labelled["mpg"] - labelled["label"]).abs()
    inside = (labelled["label"] >= labelled["mpg_low"]) & (
        labelled["label"] <= labelled["mpg_high"]
    )
    inside = inside.astype(float).where(labelled["mpg_low"].notna() & labelled["mpg_high"].notna())
    grouped = pd.DataFrame({"slot": slot, "error": error, "inside": inside}).groupby("slot")
    frame = pd.DataFrame(
        {
            "labels": grouped["error"].count(),
            "mae": grouped["error"].mean(),
            "coverage": grouped["inside"].mean(),
        }
    )
    frame["start"] = [first + span * int(i) for i in frame.index]
    return frame.reset_index(drop=True)[columns]
