"""`carnn monitor`'s work: one window of the log judged against its model's reference profile,
and logged as one MLflow run (experiment ``carnn-monitoring``) with its HTML report.

:func:`judge` is pure (rows and a profile in, an :class:`Outcome` out); :func:`log_run` and
:func:`profile_of` are the I/O at its edges.
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from carnn_pyfunc.monitoring.accuracy import accuracy_over_time, against_test, live_accuracy
from carnn_pyfunc.monitoring.alerts import Thresholds, judge_fields, reasons
from carnn_pyfunc.monitoring.drift import drift_table
from carnn_pyfunc.monitoring.reading import LABEL_COLUMN, Window

logger = logging.getLogger(__name__)

EXPERIMENT = "carnn-monitoring"
REPORT_FILE = "monitor_report.html"
PROFILE_FILE = "profile.json"
# per-field metrics: metric prefix -> drift table column
FIELD_METRICS = {
    "drift_p": "p_adjusted",
    "wasserstein": "shift",
    "psi": "psi",
    "js": "js",
    "outside_range": "outside",
    "unseen": "unseen",
    "missing": "missing",
}
LIVE_METRICS = (
    "mae",
    "mae_low",
    "mae_high",
    "rmse",
    "rmse_low",
    "rmse_high",
    "coverage",
    "coverage_low",
    "coverage_high",
    "width",
    "labels",
)


class ProfileMissing(LookupError):
    """The model carries no reference profile (it was logged before monitoring existed)."""


@dataclass(frozen=True)
class Outcome:
    """A judged window."""

    window: Window
    model_name: str
    model_version: str
    rows: int
    failed: int
    table: pd.DataFrame  # the drift table, judged (``drifting``)
    live: dict[str, float]  # live_accuracy of the labelled rows
    versus: dict[str, float]  # against_test: mae_ratio, rmse_ratio, coverage_gap
    over_time: pd.DataFrame  # accuracy_over_time
    reasons: list[str]

    @property
    def alert(self) -> bool:
        return bool(self.reasons)

    def describe(self) -> str:
        since, until = self.window.since, self.window.until
        return (
            f"{self.model_name} version {self.model_version}, "
            f"{since:%Y-%m-%d %H:%M:%S} to {until:%Y-%m-%d %H:%M:%S} UTC"
        )


def choose_version(frame: pd.DataFrame, version: str | None) -> tuple[pd.DataFrame, str]:
    """The rows of ``version``, or of the version that answered most rows of the window."""
    if version is None:
        counts = frame["model_version"].value_counts()
        version = str(counts.index[0])
        if len(counts) > 1:
            logger.warning(
                "the window holds versions %s; monitoring %s (the most rows; --model-version "
                "picks another)",
                ", ".join(map(str, counts.index)),
                version,
            )
    return frame[frame["model_version"] == version], str(version)


def judge(
    frame: pd.DataFrame,
    profile: dict,
    window: Window,
    thresholds: Thresholds | None = None,
    *,
    version: str,
    seed: int = 0,
    n_boot: int = 1000,
) -> Outcome:
    """Drift, live accuracy and the verdict of one version's rows of a window (joined with
    their labels: column ``label``)."""
    thresholds = thresholds or Thresholds()
    frame = frame.sort_values(["time", "request_id", "row"], kind="stable")  # either engine
    failed = frame["error"].notna() | frame["mpg"].isna()
    if "status" in frame:  # a version that failed the whole request logs status 500
        failed |= frame["status"].notna() & (frame["status"] != 200)
    good = frame[~failed]
    table = judge_fields(drift_table(good, profile, thresholds.correction), thresholds)
    labelled = good[good[LABEL_COLUMN].notna()]
    live = live_accuracy(
        labelled[LABEL_COLUMN].to_numpy(),
        labelled["mpg"].to_numpy(dtype=np.float64),
        labelled["mpg_low"].to_numpy(dtype=np.float64),
        labelled["mpg_high"].to_numpy(dtype=np.float64),
        seed=seed,
        n_boot=n_boot,
    )
    test = profile.get("test", {})
    names = frame["model_name"].dropna()
    return Outcome(
        window=window,
        model_name=window.model_name or (str(names.mode().iloc[0]) if len(names) else "?"),
        model_version=version,
        rows=len(frame),
        failed=int(failed.sum()),
        table=table,
        live=live,
        versus=against_test(live, test),
        over_time=accuracy_over_time(
            labelled[["time", "mpg", LABEL_COLUMN, "mpg_low", "mpg_high"]].rename(
                columns={LABEL_COLUMN: "label"}
            )
        ),
        reasons=reasons(table, live, test, thresholds),
    )


def metrics_of(outcome: Outcome) -> dict[str, float]:
    """The run's metrics: per field (``drift_p_weight``, ``wasserstein_weight``, ...), live
    accuracy (``live_mae``, ...), the ratios to the test figures and the window's counts.
    NaN (not measured) is left out."""
    metrics = {"rows": float(outcome.rows), "failed_rows": float(outcome.failed)}
    for name, row in outcome.table.iterrows():
        for prefix, column in FIELD_METRICS.items():
            metrics[f"{prefix}_{name}"] = float(row[column])
        metrics[f"drifting_{name}"] = float(bool(row["drifting"]))
    metrics["fields_drifting"] = float(outcome.table["drifting"].sum())
    metrics |= {f"live_{k}": float(outcome.live[k]) for k in LIVE_METRICS}
    metrics |= {f"live_{k}": float(v) for k, v in outcome.versus.items()}
    metrics["alert"] = float(outcome.alert)
    return {k: v for k, v in metrics.items() if not math.isnan(v)}


def log_run(outcome: Outcome, profile: dict, values: dict, thresholds: Thresholds) -> str:
    """One MLflow run for the window in experiment ``carnn-monitoring``: metrics, thresholds
    as parameters, tags (model, version, window, verdict), the HTML report and the drift table;
    live MAE and coverage over the window as steps of ``live_mae_over_time`` and
    ``live_coverage_over_time``. Returns the run id."""
    import mlflow
    from mlflow.entities import Metric

    from carnn_pyfunc.monitoring.report import render

    mlflow.set_experiment(EXPERIMENT)
    w = outcome.window
    name = f"{outcome.model_name} v{outcome.model_version} {w.since:%Y-%m-%d %H:%M}"
    tags = {
        "model_name": outcome.model_name,
        "model_version": outcome.model_version,
        "window_start": w.since.isoformat(),
        "window_end": w.until.isoformat(),
        "verdict": "alert" if outcome.alert else "well",
    }
    if outcome.reasons:
        tags["reasons"] = "\n".join(outcome.reasons)[:5000]
    with mlflow.start_run(run_name=name, tags=tags) as run:
        mlflow.log_params(asdict(thresholds))
        mlflow.log_metrics(metrics_of(outcome))
        series = []
        for step, point in outcome.over_time.iterrows():
            stamp = int(pd.Timestamp(point["start"]).timestamp() * 1000)
            for key, column in (
                ("live_mae_over_time", "mae"),
                ("live_coverage_over_time", "coverage"),
            ):
                if not pd.isna(point[column]):
                    series.append(Metric(key, float(point[column]), stamp, int(step)))
        if series:
            mlflow.MlflowClient().log_batch(run.info.run_id, metrics=series)
        with tempfile.TemporaryDirectory(prefix="carnn-monitor-") as tmp:
            report = Path(tmp) / REPORT_FILE
            report.write_text(render(outcome, values, profile))
            drift = Path(tmp) / "drift.json"
            drift.write_text(outcome.table.reset_index().to_json(orient="records", indent=1))
            mlflow.log_artifact(str(report))
            mlflow.log_artifact(str(drift))
    return run.info.run_id


def profile_of(model_uri: str) -> dict:
    """The reference profile a model carries (its ``profile`` artifact), read without loading
    the model: its MLmodel file, then that one artifact. ProfileMissing when it has none."""
    import mlflow
    import yaml

    from carnn_pyfunc.monitoring.profile import load_profile

    base = model_uri.rstrip("/")
    with tempfile.TemporaryDirectory(prefix="carnn-profile-") as tmp:
        mlmodel = mlflow.artifacts.download_artifacts(artifact_uri=f"{base}/MLmodel", dst_path=tmp)
        spec = yaml.safe_load(Path(mlmodel).read_text())
        artifacts = spec.get("flavors", {}).get("python_function", {}).get("artifacts", {})
        if "profile" not in artifacts:
            raise ProfileMissing(
                f"{model_uri} carries no reference profile (it was trained before monitoring "
                "existed): retrain it, or pass --profile PROFILE.json"
            )
        path = artifacts["profile"]["path"]
        local = mlflow.artifacts.download_artifacts(artifact_uri=f"{base}/{path}", dst_path=tmp)
        return load_profile(local)


def read_profile_file(path: str) -> dict:
    """A profile.json given on the command line."""
    from carnn_pyfunc.monitoring.profile import load_profile

    try:
        return load_profile(path)
    except (OSError, json.JSONDecodeError) as err:
        raise ProfileMissing(f"{path}: not a readable profile ({err})") from err
