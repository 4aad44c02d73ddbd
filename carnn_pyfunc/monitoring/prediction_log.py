"""The prediction log's writer: every scored row, in batches, off the request path.

A caller hands over answered requests as an Arrow table of their rows (:meth:`record_table`: a
deque append, never a wait); a thread of the log's own writes what is queued every ``flush_s``
seconds (sooner when many rows wait), one Parquet file per partition (:mod:`.schema`: date and
model version). The queue is bounded: past ``max_rows``
rows waiting, a request's rows are dropped and counted, so a slow filesystem never slows or fails
a prediction. :meth:`close` writes what is queued (graceful shutdown).
"""

from __future__ import annotations

import collections
import itertools
import logging
import math
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyarrow import fs

from carnn_pyfunc.contract.fields import FIELDS
from carnn_pyfunc.monitoring.schema import LABELS, PREDICTION_SCHEMA, PREDICTIONS

logger = logging.getLogger(__name__)
_NUMBER_FIELDS = [f.name for f in FIELDS if f.numeric]


def filesystem(root: str) -> tuple[fs.FileSystem, str]:
    """The filesystem and path of a log root: a local folder or any URI pyarrow supports."""
    if "://" not in root:
        return fs.LocalFileSystem(), os.path.abspath(root)
    return fs.FileSystem.from_uri(root)


_ID_PREFIX = uuid.uuid4().hex[:16]  # this process's; a counter after it: unique, and cheap
_ID_COUNTER = itertools.count()


def write_file(filesystem_: fs.FileSystem, folder: str, name: str, table: pa.Table) -> None:
    """``folder/name`` written whole: first as ``_name.partial``, a name that pyarrow datasets,
    Spark and Hive all skip (a leading ``_``), then renamed, so no reader sees half a file."""
    partial = f"{folder}/_{name}.partial"
    with filesystem_.open_output_stream(partial) as stream:
        pq.write_table(table, stream)
    filesystem_.move(partial, f"{folder}/{name}")


def new_request_id() -> str:
    return f"{_ID_PREFIX}{next(_ID_COUNTER):08x}"


@dataclass(frozen=True)
class ModelId:
    name: str | None
    version: str | None
    run_id: str | None


class Entry(NamedTuple):
    """One answered request, as queued."""

    request_id: str
    time: float  # seconds since the epoch
    records: object  # list of dicts or a DataFrame, as the model read them
    answer: dict  # the model's columns: mpg (NaN for a failed row), mpg_low/high, error
    latency_ms: float
    role: str
    model: ModelId | None = None  # the version that answered; None: the log's own
    status: int = 200
    first_row: int = 0  # the request's row number of the first record (a chunk of a request)


class PredictionLog:
    """Writes answered requests under ``root`` (see :mod:`.schema`); ``sample``: the share of
    requests logged (all their rows, or none). ``on_written``/``on_dropped``: row counters."""

    def __init__(
        self,
        root: str,
        model: ModelId,
        *,
        sample: float = 1.0,
        max_rows: int = 200_000,
        flush_s: float = 2.0,
        on_written: Callable[[int], None] = lambda n: None,
        on_dropped: Callable[[int], None] = lambda n: None,
    ) -> None:
        if not 0 < sample <= 1:
            raise ValueError("prediction log sample: expected a share in (0, 1]")
        self.fs, self.path = filesystem(root)
        self.model, self.sample, self.max_rows, self.flush_s = model, sample, max_rows, flush_s
        self.on_written, self.on_dropped = on_written, on_dropped
        self._queue: collections.deque[Entry] = collections.deque()
        self._queued = 0  # rows waiting
        self._lock = threading.Lock()
        self._wake, self._stop = threading.Event(), threading.Event()
        self._prefix = f"part-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._seq = itertools.count()
        self._chunks = itertools.count()  # a batch job's chunks (record_batch)
        self._thread = threading.Thread(target=self._run, name="carnn-prediction-log", daemon=True)
        self._thread.start()

    def record(self, entry: Entry) -> None:
        """Queue one answered request (never blocks; drops and counts when the queue is full)."""
        self.record_many([entry])

    def sampled(self, entries: list[Entry]) -> list[Entry]:
        """The requests the sample keeps (all of them at sample 1)."""
        if self.sample >= 1:
            return entries
        return [e for e in entries if random.random() < self.sample]

    def record_many(self, entries: list[Entry], columns: dict | None = None) -> None:
        """Queue answered requests (``columns``: their :func:`rows_of`, if already built)."""
        entries = self.sampled(entries) if columns is None else entries
        if entries:
            self.record_table(as_table(columns if columns is not None else
                                       rows_of(entries, self.model)))  # fmt: skip

    def record_table(self, table: pa.Table) -> None:
        """Queue rows already in the log's columns (:func:`as_table`). The queue holds Arrow
        tables (~100 bytes a row), never Python objects per value."""
        rows = table.num_rows
        if not rows:
            return
        with self._lock:
            if self._queued + rows > self.max_rows:
                self.on_dropped(rows)
                return
            self._queued += rows
        self._queue.append(table)
        if self._queued >= self.max_rows // 4:
            self._wake.set()

    def record_batch(self, fields: pa.RecordBatch, mpg: pa.Array, error: pa.Array, at: float):
        """A batch job's chunk (its field columns and answers): never dropped (the queue of a
        batch log is unbounded: a job waits for its log, a service never does)."""
        answer = {"mpg": mpg.to_numpy(zero_copy_only=False), "error": error.to_pylist()}
        latency = (time.time() - at) * 1000
        self.record(Entry(f"score-{self._prefix[5:]}-{next(self._chunks)}", at,
                          fields.to_pandas(), answer, latency, "primary"))  # fmt: skip

    def close(self) -> None:
        """Write everything queued, then stop the writer."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=60)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_s)
            self._wake.clear()
            self.flush()
        self.flush()

    def flush(self) -> None:
        batches = []
        while self._queue:
            batches.append(self._queue.popleft())
        if not batches:
            return
        rows = sum(b.num_rows for b in batches)
        with self._lock:
            self._queued -= rows
        try:
            table = pa.concat_tables(batches)
            versions = table["model_version"]
            for version in pc.unique(versions).to_pylist():
                same = pc.is_null(versions) if version is None else pc.equal(versions, version)
                self._write(table.filter(same).drop_columns(["model_version"]), version)
            self.on_written(rows)
        except (OSError, pa.ArrowException, ValueError, TypeError) as err:
            logger.error("prediction log: %d rows not written: %s", rows, err)
            self.on_dropped(rows)

    def _write(self, table: pa.Table, version: str | None) -> None:
        dates = pc.strftime(table["time"], format="%Y-%m-%d")
        for date in pc.unique(dates).to_pylist():
            part = table.filter(pc.equal(dates, date))
            folder = f"{self.path}/{PREDICTIONS}/date={date}/model_version={version}"
            self.fs.create_dir(folder, recursive=True)
            write_file(self.fs, folder, f"{self._prefix}-{next(self._seq):06d}.parquet", part)


def rows_of(entries: list[Entry], model: ModelId) -> dict[str, list]:
    """The log's columns (:data:`.schema.PREDICTION_SCHEMA`) of answered requests."""
    columns: dict[str, list] = {name: [] for name in (*PREDICTION_SCHEMA.names, "model_version")}
    default = model
    for e in entries:
        answer, model = e.answer, e.model or default
        n = len(answer["mpg"])
        if n == 1 and type(e.records) is list and type(e.records[0]) is dict:
            _one_row(columns, e, model)  # a one-car request: no list per field
            continue
        columns["request_id"] += [e.request_id] * n
        columns["row"] += range(e.first_row, e.first_row + n)
        columns["time"] += [int(e.time * 1000)] * n  # milliseconds since the epoch
        columns["model_name"] += [model.name] * n
        columns["run_id"] += [model.run_id] * n
        columns["role"] += [e.role] * n
        for name, values in input_columns(e.records, n).items():
            columns[name] += values
        columns["mpg"] += _floats(answer["mpg"])
        for name in ("mpg_low", "mpg_high"):
            columns[name] += _floats(answer[name]) if name in answer else [None] * n
        columns["error"] += list(answer["error"]) if "error" in answer else [None] * n
        columns["latency_ms"] += [e.latency_ms] * n
        columns["status"] += [e.status] * n
        columns["model_version"] += [model.version] * n
    return columns


LOG_TABLE_SCHEMA = PREDICTION_SCHEMA.append(pa.field("model_version", pa.string()))


def as_table(columns: dict[str, list]) -> pa.Table:
    """:func:`rows_of`'s columns as one Arrow table (the version as a column: a partition once
    written)."""
    return pa.Table.from_pydict(columns, schema=LOG_TABLE_SCHEMA)


def _one_row(columns: dict[str, list], e: Entry, model: ModelId) -> None:
    record, answer = e.records[0], e.answer
    for name, value in (("request_id", e.request_id), ("row", e.first_row),
                        ("time", int(e.time * 1000)), ("model_name", model.name),
                        ("run_id", model.run_id), ("role", e.role),
                        ("latency_ms", e.latency_ms), ("status", e.status),
                        ("model_version", model.version)):  # fmt: skip
        columns[name].append(value)
    for name in _NUMBER_FIELDS:
        columns[name].append(_number(record.get(name)))
    name = record.get("name")
    columns["name"].append(name if isinstance(name, str) else None)
    for key in ("mpg", "mpg_low", "mpg_high"):
        value = float(answer[key][0]) if key in answer else math.nan
        columns[key].append(None if math.isnan(value) else value)
    columns["error"].append(answer["error"][0] if "error" in answer else None)


def input_columns(records, n: int) -> dict[str, list]:
    """Each field's values as validated: numbers as floats (None where missing or not a
    number), the name as text (None otherwise)."""
    if isinstance(records, pd.DataFrame):
        out = {}
        for f in FIELDS:
            if f.name not in records.columns:
                out[f.name] = [None] * n
            elif f.numeric:
                values = pd.to_numeric(records[f.name], errors="coerce").astype("float64")
                out[f.name] = [None if math.isnan(v) else v for v in values.tolist()]
            else:
                out[f.name] = [v if isinstance(v, str) else None for v in records[f.name]]
        return out
    rows = [r if isinstance(r, dict) else {} for r in records]
    out = {name: [_number(r.get(name)) for r in rows] for name in _NUMBER_FIELDS}
    out["name"] = [v if isinstance(v := r.get("name"), str) else None for r in rows]
    return out


def _number(value: object) -> float | None:
    if type(value) is int or type(value) is float:
        try:
            number = float(value)
        except OverflowError:
            return None
        return number if math.isfinite(number) else None
    return None


def _floats(values) -> list:
    array = np.asarray(values, dtype=np.float64)
    return [None if math.isnan(v) else v for v in array.tolist()]


def now() -> float:
    return time.time()


__all__ = ["LABELS", "Entry", "ModelId", "PredictionLog", "as_table", "new_request_id", "rows_of"]
