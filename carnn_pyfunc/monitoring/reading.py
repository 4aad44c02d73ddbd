"""Read a window of the prediction log and its labels (pyarrow datasets over any filesystem
pyarrow supports), joined on (request_id, row).

Only the partitions a window can touch are opened (``date`` from the window's bounds, and the
model version when one is asked for); the rows are then filtered on their own ``time``. Labels
arrive after their predictions: all labels from the window's first day on are read, the latest
label of a row wins.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
from pyarrow import fs

from carnn_pyfunc.monitoring.prediction_log import filesystem
from carnn_pyfunc.monitoring.schema import LABEL_SCHEMA, LABELS, PREDICTION_SCHEMA, PREDICTIONS

logger = logging.getLogger(__name__)

LABEL_COLUMN = "label"  # the true mpg of a logged row, once joined
_PARTITIONING = ds.partitioning(
    pa.schema([("date", pa.string()), ("model_version", pa.string())]), flavor="hive"
)
_LABEL_PARTITIONING = ds.partitioning(pa.schema([("date", pa.string())]), flavor="hive")


class LogNotFound(FileNotFoundError):
    """No prediction log under the root, or nothing in the window."""


@dataclass(frozen=True)
class Window:
    """A time window [since, until) over one model's log (version None: any version)."""

    since: datetime
    until: datetime
    model_name: str | None = None
    model_version: str | None = None

    def describe(self) -> str:
        model = self.model_name or "any model"
        version = f" version {self.model_version}" if self.model_version else ""
        since, until = f"{self.since:%Y-%m-%d %H:%M:%S}", f"{self.until:%Y-%m-%d %H:%M:%S}"
        return f"{model}{version} from {since} to {until} UTC"


def _dataset(
    filesystem_: fs.FileSystem,
    path: str,
    schema,
    partitioning,
    first_day: str,
    last_day: str | None = None,
):
    """The finished Parquet files (``*.parquet``: a file being written is ``_*.partial``) of
    the date partitions from ``first_day`` to ``last_day`` (ISO dates), as one dataset; None
    when the folder does not exist."""
    if filesystem_.get_file_info(path).type != fs.FileType.Directory:
        return None
    files = []
    for day in filesystem_.get_file_info(fs.FileSelector(path)):
        date = day.base_name.removeprefix("date=")
        if day.type != fs.FileType.Directory or not day.base_name.startswith("date="):
            continue
        if date < first_day or (last_day is not None and date > last_day):
            continue
        for info in filesystem_.get_file_info(fs.FileSelector(day.path, recursive=True)):
            if info.type == fs.FileType.File and info.base_name.endswith(".parquet"):
                files.append(info.path)
    return ds.dataset(
        sorted(files),
        filesystem=filesystem_,
        format="parquet",
        schema=pa.unify_schemas([schema, partitioning.schema]),
        partitioning=partitioning,
        partition_base_dir=path,
    )


def prediction_filter(window: Window) -> ds.Expression:
    """The window as a dataset filter: the version's partition (pruned unopened), then time."""
    since, until = pd.Timestamp(window.since), pd.Timestamp(window.until)
    expr = ds.scalar(True)
    if window.model_version is not None:
        expr &= ds.field("model_version") == str(window.model_version)
    expr &= (ds.field("time") >= pa.scalar(since, pa.timestamp("ms", tz="UTC"))) & (
        ds.field("time") < pa.scalar(until, pa.timestamp("ms", tz="UTC"))
    )
    if window.model_name is not None:
        expr &= ds.field("model_name") == window.model_name
    return expr


def read_predictions(root: str, window: Window, progress: bool = False) -> pd.DataFrame:
    """The window's logged rows (the schema's columns plus ``model_version``), in batches with
    a progress bar when ``progress``. LogNotFound when the root has no prediction log."""
    filesystem_, path = filesystem(root)
    since, until = pd.Timestamp(window.since), pd.Timestamp(window.until)
    dataset = _dataset(
        filesystem_,
        f"{path}/{PREDICTIONS}",
        PREDICTION_SCHEMA,
        _PARTITIONING,
        f"{since:%Y-%m-%d}",
        f"{until:%Y-%m-%d}",
    )
    if dataset is None:
        raise LogNotFound(f"{root}: no prediction log here (no {PREDICTIONS}/ folder)")
    scanner = dataset.scanner(filter=prediction_filter(window), batch_size=65_536)
    batches = scanner.to_batches()
    if progress:
        from tqdm import tqdm

        total = dataset.count_rows(filter=prediction_filter(window))
        bar = tqdm(total=total, unit="rows", desc="reading the log", leave=False)
        batches = _counted(batches, bar)
    table = pa.Table.from_batches(list(batches), schema=scanner.projected_schema)
    return table.to_pandas(types_mapper={pa.string(): pd.StringDtype()}.get)


def _counted(batches, bar):
    with bar:
        for batch in batches:
            bar.update(batch.num_rows)
            yield batch


def read_labels(root: str, since: datetime) -> pd.DataFrame:
    """Labels that arrived on or after ``since``'s day, the latest per (request_id, row)."""
    filesystem_, path = filesystem(root)
    day = f"{pd.Timestamp(since):%Y-%m-%d}"
    dataset = _dataset(filesystem_, f"{path}/{LABELS}", LABEL_SCHEMA, _LABEL_PARTITIONING, day)
    columns = ["request_id", "row", "mpg", "time"]
    if dataset is None:
        return LABEL_SCHEMA.empty_table().to_pandas()
    table = dataset.to_table(columns=columns)
    return latest_labels(table.to_pandas(types_mapper={pa.string(): pd.StringDtype()}.get))


def latest_labels(labels: pd.DataFrame) -> pd.DataFrame:
    """One label per (request_id, row): the one that arrived last."""
    labels = labels.sort_values("time", kind="stable")
    return labels.drop_duplicates(["request_id", "row"], keep="last").reset_index(drop=True)


def join_labels(predictions: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """The predictions with a ``label`` column (NaN where no label arrived)."""
    right = labels[["request_id", "row", "mpg"]].rename(columns={"mpg": LABEL_COLUMN})
    right = right.astype({"request_id": predictions["request_id"].dtype, "row": "int32"})
    left = predictions.astype({"row": "int32"})
    joined = left.merge(right, on=["request_id", "row"], how="left", validate="many_to_one")
    joined[LABEL_COLUMN] = joined[LABEL_COLUMN].astype("float64")
    return joined


def read_window(root: str, window: Window, progress: bool = False) -> pd.DataFrame:
    """The window's rows joined with their labels (``label``)."""
    predictions = read_predictions(root, window, progress)
    return join_labels(predictions, read_labels(root, window.since))
