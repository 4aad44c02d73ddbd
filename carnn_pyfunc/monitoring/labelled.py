"""Labelled served cars in a window: the answered rows of the prediction log that got a label.

:func:`labelled_rows` reads the window as `carnn monitor` does (:func:`.reading.read_window`:
pyarrow datasets under any filesystem URI pyarrow supports, the latest label of a row wins) and
keeps the cars alone, one per request row (a row a shadow or canary also answered counts once):
the field columns and ``mpg``, the true figure. The live-evidence gate of promotion scores
versions on these; :func:`write_labelled` (`carnn labelled`) writes them as the Parquet file
`train.py --extra-data` reads.

A window is ``since <= time < until`` on the time a row was answered.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from carnn_pyfunc.contract.fields import INPUT_FIELDS
from carnn_pyfunc.monitoring.prediction_log import filesystem
from carnn_pyfunc.monitoring.reading import LABEL_COLUMN, Window, read_window
from carnn_pyfunc.monitoring.schema import PREDICTION_SCHEMA

TARGET = "mpg"  # the true figure's column in labelled_rows and the files they are written to
LABELLED_SCHEMA = pa.schema(
    [*(PREDICTION_SCHEMA.field(name) for name in INPUT_FIELDS), (TARGET, pa.float64())]
)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # a window with no start: the whole log
_AGE = re.compile(r"(\d+(?:\.\d+)?)([dhm])")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def parse_time(text: str, now: datetime | None = None) -> datetime:
    """A window bound: an ISO date or time (UTC unless it names its zone), or an age before now
    such as ``7d``, ``12h`` or ``30m``. ValueError says what was expected."""
    text = text.strip()
    if match := _AGE.fullmatch(text):
        age = timedelta(**{_UNITS[match[2]]: float(match[1])})
        return (now or datetime.now(UTC)) - age
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a time: expected an ISO date or time (2026-12-01, "
            "2026-12-01T08:00) or an age such as 7d, 12h or 30m"
        ) from None
    return _utc(when)


def _utc(when: datetime | None) -> datetime | None:
    if when is None:
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def labelled_rows(
    root: str, since: datetime | None = None, until: datetime | None = None
) -> pd.DataFrame:
    """The labelled cars answered in ``[since, until)`` (default: the log's start, now): the
    field columns and ``mpg``, the true figure. LogNotFound when ``root`` holds no log."""
    window = Window(_utc(since) or EPOCH, _utc(until) or datetime.now(UTC))
    log = read_window(root, window)
    answered = log["error"].isna() & log["mpg"].notna() & log[LABEL_COLUMN].notna()
    if "status" in log.columns:  # a version that failed the request logs status 500
        answered &= log["status"].isna() | (log["status"] == 200)
    log = log[answered].copy()
    log["_shadowed"] = log["role"].fillna("primary") != "primary"  # the primary's row first
    log = log.sort_values(["_shadowed", "time"], kind="stable")
    log = log.drop_duplicates(["request_id", "row"])
    log = log.sort_values(["time", "request_id", "row"], kind="stable")
    rows = log[list(INPUT_FIELDS)].copy()
    rows[TARGET] = log[LABEL_COLUMN].to_numpy(dtype="float64")
    return rows.reset_index(drop=True)


def write_labelled(rows: pd.DataFrame, out: str) -> int:
    """Write :func:`labelled_rows` as one Parquet file (a path or a filesystem URI); the number
    of rows written."""
    filesystem_, path = filesystem(out)
    parent = path.rsplit("/", 1)[0]
    if parent and parent != path:
        filesystem_.create_dir(parent, recursive=True)
    table = pa.Table.from_pandas(rows[LABELLED_SCHEMA.names], schema=LABELLED_SCHEMA,
                                 preserve_index=False)  # fmt: skip
    pq.write_table(table, path, filesystem=filesystem_)
    return table.num_rows
