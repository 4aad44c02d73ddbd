"""A window of the prediction log (and the labels) as one rollout step's evidence."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pyarrow.dataset as ds

from carnn_pyfunc.monitoring.prediction_log import filesystem
from carnn_pyfunc.monitoring.schema import LABELS, PREDICTIONS
from carnn_pyfunc.rollout.checks import Evidence, Thresholds

_COLUMNS = ["request_id", "row", "time", "role", "mpg", "status", "latency_ms", "model_version"]


def read_window(root: str, since: float, until: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(log rows, labels) of ``since`` <= time < ``until`` (seconds since the epoch)."""
    filesystem_, path = filesystem(root)
    start = pd.Timestamp(datetime.fromtimestamp(since, UTC))
    end = pd.Timestamp(datetime.fromtimestamp(until, UTC))
    frames = []
    for name, columns in ((PREDICTIONS, _COLUMNS), (LABELS, ["request_id", "row", "mpg"])):
        try:
            dataset = ds.dataset(f"{path}/{name}", filesystem=filesystem_, format="parquet",
                                 partitioning="hive")  # fmt: skip
        except (FileNotFoundError, OSError):
            frames.append(pd.DataFrame(columns=columns))
            continue
        table = dataset.to_table(columns=columns) if name == LABELS else dataset.to_table(
            columns=columns, filter=(ds.field("time") >= start) & (ds.field("time") < end)
        )  # fmt: skip
        frame = table.to_pandas()
        if "model_version" in frame:
            frame["model_version"] = frame["model_version"].astype(str)
        frames.append(frame)
    return frames[0], frames[1]


def evidence(log: pd.DataFrame, labels: pd.DataFrame, candidate: str, production: str,
             t: Thresholds) -> Evidence:  # fmt: skip
    """The candidate's figures in a window of the log."""
    mine = log[log["model_version"] == candidate]
    answered = mine[mine["role"] == "canary"]
    requests = answered["request_id"].nunique()
    per_request = mine.groupby("request_id")["status"].max()
    latencies = answered.groupby("request_id")["latency_ms"].first()
    p99 = float(np.percentile(latencies, 99)) if len(latencies) else None
    ok = mine[mine["status"] == 200][["request_id", "row", "mpg"]]
    theirs = log[(log["model_version"] == production) & (log["status"] == 200)]
    both = ok.merge(theirs[["request_id", "row", "mpg"]], on=["request_id", "row"],
                    suffixes=("_c", "_p")).dropna(subset=["mpg_c", "mpg_p"])  # fmt: skip
    disagree = int((np.abs(both["mpg_c"] - both["mpg_p"]) > t.disagree_mpg).sum())
    truth = labels.drop_duplicates(["request_id", "row"], keep="last").rename(
        columns={"mpg": "truth"}
    )
    labelled = both.merge(truth, on=["request_id", "row"])
    mae = {
        side: float(np.mean(np.abs(labelled[f"mpg_{side}"] - labelled["truth"])))
        if len(labelled) else None
        for side in ("c", "p")
    }  # fmt: skip
    return Evidence(
        requests=int(requests),
        errors_5xx=int((per_request >= 500).sum()),
        scored_requests=len(per_request),
        p99_ms=p99,
        compared_rows=len(both),
        disagreeing_rows=disagree,
        labelled_rows=len(labelled),
        mae_candidate=mae["c"],
        mae_production=mae["p"],
    )
