"""Monitoring figures, offline: `carnn monitor`'s own statistics and default thresholds on
windows of resampled cars, no server (the drill in tests/test_monitor_drill.py runs the same
traffic over HTTP).

- false alerts of in-distribution traffic: 20 windows of 2,000 held-out cars resampled, against
  the profile of the same split's training cars (one split, as one served model sees; and 20
  independent splits, a fresh train/held-out split per window);
- the fewest rows after which weight sent in kilograms (/ 2.205) alerts, and after which cars of
  model years 80-82 alert against a profile of years up to 79: for each of 20 seeds the
  smallest window size from which every larger size tried alerts too; the worst seed and the
  median;
- with a model (``--model-uri``, or bench.py's trained model): its answers and 90% intervals on
  those windows, so the accuracy rules take part (every row labelled), and the coverage of the
  in-distribution windows.

    python bench/monitor_bench.py [--model-uri DIR_OR_URI] [--out bench/monitor.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from carnn_pyfunc import data
from carnn_pyfunc.contract import fit_contract
from carnn_pyfunc.monitoring.accuracy import live_accuracy
from carnn_pyfunc.monitoring.alerts import Thresholds, judge_fields, reasons
from carnn_pyfunc.monitoring.drift import drift_table
from carnn_pyfunc.monitoring.profile import build_profile

WINDOWS, WINDOW_ROWS = 20, 2000
SIZES = (5, 10, 15, 20, 25, 30, 40, 50, 60, 80, 100, 150, 200, 300, 400)
NO_LABELS = {"labels": 0.0, "interval_labels": 0.0}


def profile_of_split(train: pd.DataFrame, test_figures: dict | None = None) -> dict:
    """The profile a model trained on ``train`` carries (no network needed for it)."""
    return build_profile(train, fit_contract(train, min_maker_count=10), test_figures or {})


def resampled(cars: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return cars.iloc[rng.integers(0, len(cars), n)].reset_index(drop=True)


class Judge:
    """A window's alert reasons under the default thresholds; with a model, labelled."""

    def __init__(self, model=None, thresholds: Thresholds | None = None) -> None:
        self.model, self.thresholds = model, thresholds or Thresholds()

    def __call__(self, window: pd.DataFrame, profile: dict) -> tuple[list[str], dict]:
        table = judge_fields(
            drift_table(window, profile, self.thresholds.correction), self.thresholds
        )
        live = NO_LABELS
        if self.model is not None:
            fields = window.drop(columns=[data.TARGET])
            numbers = [c for c in fields.columns if c != "name"]
            answer = self.model.predict(
                fields.astype(dict.fromkeys(numbers, "float64")), params={"interval": 0.9}
            )
            live = live_accuracy(
                window[data.TARGET].to_numpy(),
                answer["mpg"].to_numpy(),
                answer["mpg_low"].to_numpy(),
                answer["mpg_high"].to_numpy(),
                n_boot=200,
            )
        return reasons(table, live, profile.get("test", {}), self.thresholds), live


def false_alerts(judge: Judge, frame: pd.DataFrame, profile: dict, seed: int) -> dict:
    """In-distribution windows against one split's profile, and against fresh splits."""
    _, test = data.split(frame, test_size=0.2, seed=seed)
    one, coverage = [], []
    for w in range(WINDOWS):
        found, live = judge(resampled(test, WINDOW_ROWS, 1000 + w), profile)
        one.append(bool(found))
        coverage.append(live.get("coverage", float("nan")))
    independent = []
    drift_only = Judge()
    for w in range(WINDOWS):
        train_w, test_w = data.split(frame, test_size=0.2, seed=w)
        found, _ = drift_only(resampled(test_w, WINDOW_ROWS, 2000 + w), profile_of_split(train_w))
        independent.append(bool(found))
    result = {"one_split": sum(one), "independent_splits_drift_only": sum(independent)}
    if judge.model is not None:
        result["coverage_median"] = statistics.median(coverage)
        result["coverage_min"], result["coverage_max"] = min(coverage), max(coverage)
    return result


def rows_to_alert(judge: Judge, cars: pd.DataFrame, profile: dict, change) -> dict:
    """For each seed, the smallest size from which every larger size alerts."""
    fewest = []
    for seed in range(WINDOWS):
        alerting = [bool(judge(change(resampled(cars, n, seed)), profile)[0]) for n in SIZES]
        first = next((n for i, n in enumerate(SIZES) if all(alerting[i:])), None)
        fewest.append(first)
    if None in fewest:  # some seed never alerted at every size tried
        return {"max": None, "median": None, "never": fewest.count(None)}
    return {"max": max(fewest), "median": statistics.median(fewest)}


def kilograms(window: pd.DataFrame) -> pd.DataFrame:
    return window.assign(weight=window["weight"] / 2.205)


def run(model_uri: str | None = None, seed: int = 42) -> dict:
    """The figures (a dict for bench/results.json: ``monitor`` plus two headline keys)."""
    start = time.perf_counter()
    frame = data.load_auto_mpg()
    train, test = data.split(frame, test_size=0.2, seed=seed)
    profile = profile_of_split(train)
    judge = Judge()
    if model_uri is not None:
        import mlflow

        from carnn_pyfunc.monitoring.monitor import profile_of

        judge = Judge(mlflow.pyfunc.load_model(model_uri))
        profile = profile_of(model_uri)  # the model's own (its test figures too)
    older = frame[frame["year"] <= 79].reset_index(drop=True)
    older_train, _ = data.split(older, test_size=0.2, seed=seed)
    late = frame[frame["year"] >= 80].reset_index(drop=True)
    results = {
        "window_rows": WINDOW_ROWS,
        "windows": WINDOWS,
        "false_alerts": false_alerts(judge, frame, profile, seed),
        "kg_rows_to_alert": rows_to_alert(judge, test, profile, kilograms),
        "kg_rows_to_alert_drift_only": rows_to_alert(Judge(), test, profile, kilograms),
        "kg_rows_to_alert_drift_only_without_min_rows": rows_to_alert(
            Judge(thresholds=Thresholds(min_rows=2)), test, profile, kilograms
        ),
        "late_years_rows_to_alert_drift_only": rows_to_alert(
            Judge(), late, profile_of_split(older_train), lambda w: w
        ),
        "with_model": model_uri is not None,
        "thresholds": Thresholds().__dict__,
    }
    results["seconds"] = time.perf_counter() - start
    return {
        "monitor": results,
        "monitor_false_alerts_in_20_windows": results["false_alerts"]["one_split"],
        "monitor_kg_rows_to_alert": results["kg_rows_to_alert"]["max"],
    }


def report(results: dict) -> list[str]:
    m = results["monitor"]
    f = m["false_alerts"]
    lines = [
        f"monitor: in-distribution windows of {m['window_rows']} rows, false alerts "
        f"{f['one_split']} of {m['windows']} (one split), "
        f"{f['independent_splits_drift_only']} of {m['windows']} (independent splits, drift)",
        f"monitor: weight in kg alerts from {m['kg_rows_to_alert']['max']} rows (worst of 20 "
        f"seeds; median {m['kg_rows_to_alert']['median']}); year 80-82 against a <= 79 profile "
        f"from {m['late_years_rows_to_alert_drift_only']['max']} rows; without the --min-rows "
        f"floor the kg drift shows from {m['kg_rows_to_alert_drift_only_without_min_rows']['max']}"
        " rows",
    ]
    if "coverage_median" in f:
        lines.append(
            f"monitor: coverage of the in-distribution windows {f['coverage_median']:.1%} "
            f"(median; {f['coverage_min']:.1%}-{f['coverage_max']:.1%})"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-uri", help="a carnn model (folder or MLflow URI)")
    parser.add_argument("--out", type=Path, help="also write the figures here (JSON)")
    args = parser.parse_args(argv)
    results = run(args.model_uri)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    print("\n".join(report(results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
