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
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyarrow import fs

from carnn_pyfunc.monitoring.log_rows import LOG_TABLE_SCHEMA, Entry, ModelId, as_table, rows_of
from carnn_pyfunc.monitoring.schema import LABELS, PREDICTIONS

logger = logging.getLogger(__name__)


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


def now() -> float:
    return time.time()


__all__ = ["LABELS", "LOG_TABLE_SCHEMA", "Entry", "ModelId", "PredictionLog", "as_table",
           "new_request_id", "rows_of"]  # fmt: skip
