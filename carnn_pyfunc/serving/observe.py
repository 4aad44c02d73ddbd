"""What the service saw, off the request path: live signals in /metrics and the prediction log.

A request hands its records and answer over with one deque append (a large one is made a compact
table at once); a thread of the observer's own, twice a second or as soon as
thousands of rows wait, counts inputs outside the training range per field and the predicted MPG
(Prometheus), and passes each request on to the prediction log when one is configured. A
request never waits for, or fails because of, either.
"""

from __future__ import annotations

import collections
import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from carnn_pyfunc.monitoring.prediction_log import (
    Entry,
    ModelId,
    PredictionLog,
    as_table,
    rows_of,
)
from carnn_pyfunc.serving.metrics import ServiceMetrics, observe_all
from carnn_pyfunc.serving.runtime import trim_heap

logger = logging.getLogger(__name__)
_MAX_QUEUED_ROWS = 200_000  # rows waiting for the observer; more are dropped (and counted)
_CHUNK_ROWS = 8192  # rows of a large request turned into a table at a time
_WAKE_ROWS = 4096  # rows waiting that wake the observer before its half-second tick
_INLINE_ROWS = 256  # rows waiting that the event loop observes itself (Observer.tick)


@dataclass(frozen=True)
class _Large:
    entry: Entry  # a large request's, answered
    done: Callable[[], None]


def chunk(entry: Entry, start: int, rows: int) -> Entry:
    """Rows ``start`` to ``start + rows`` of an answered request (a list of records or a
    DataFrame), numbered as in the request."""
    end = start + rows
    answer = {key: values[start:end] for key, values in entry.answer.items()}
    records = entry.records
    part = records.iloc[start:end] if hasattr(records, "iloc") else records[start:end]
    return entry._replace(records=part, answer=answer, first_row=start)


def training_ranges(contract) -> dict[str, tuple[float, float]]:
    """(lowest, highest) training value of each scaled number field, from the fitted min-max
    scaler (``scaled = value * scale + shift``: 0 at the lowest, 1 at the highest)."""
    from carnn_pyfunc.contract import NUMERIC_FIELDS

    ranges = {}
    for j, name in enumerate(NUMERIC_FIELDS):
        scale, shift = contract.scale[j], contract.shift[j]
        if scale:
            ranges[name] = (-shift / scale, (1 - shift) / scale)
    return ranges


class Observer:
    """Live signals and the log's rows of every answered request, off the request path.

    A small request is queued as it is (a few records) and observed in batches: by the event
    loop under load (:meth:`tick`), by the observer's thread on its half-second tick otherwise.
    Memory stays bounded under a flood of the largest requests: a large one is turned into a
    compact Arrow table a chunk at a time on the observer's thread at once (:meth:`prepare_soon`),
    and the next large request's work waits for that, so a worker never holds two large requests'
    Python records; at most ``max_rows`` rows wait (more are dropped and counted).
    """

    def __init__(
        self,
        metrics: ServiceMetrics,
        ranges: dict,
        log: PredictionLog | None = None,
        max_rows: int = _MAX_QUEUED_ROWS,
    ) -> None:
        self.metrics, self.ranges, self.log, self.max_rows = metrics, ranges, log, max_rows
        self.model = log.model if log is not None else ModelId(None, None, None)
        self._queue: collections.deque[Entry] = collections.deque()  # small requests
        self._queued = 0  # their rows
        self._large: collections.deque[_Large] = collections.deque()
        self._lock = threading.Lock()
        self._wake, self._stop = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._run, name="carnn-observer", daemon=True)
        self._thread.start()

    def record(self, entry: Entry) -> None:
        """Queue one answered request as it is (for a few records: no work on the request's
        path; see :meth:`tick`)."""
        self._enqueue(entry, _rows(entry))

    def tick(self) -> None:
        """Observe what is queued now, in the caller's thread (the event loop, after a response
        went out), once :data:`_INLINE_ROWS` rows wait. Under load the loop does this work in
        small batches itself: handed to the observer's thread, the GIL changed hands on every
        request and one-car throughput fell by a quarter (bench/http_bench.py)."""
        if self._queued >= _INLINE_ROWS:
            self._drain_logged(self._drain_small)

    def prepare(self, entry: Entry) -> None:
        """Observe one answered request of many rows (on the observer's thread), a chunk at a
        time: the Python lists of one chunk at most, never the whole request's."""
        n = _rows(entry)
        tables = [self._table([chunk(entry, i, _CHUNK_ROWS)]) for i in range(0, n, _CHUNK_ROWS)]
        tables = [t for t in tables if t is not None]
        if tables:
            self._observe(pa.concat_tables(tables))

    def prepare_soon(self, entry: Entry, done: Callable[[], None]) -> None:
        """:meth:`prepare` ``entry`` on the observer's thread now; ``done()`` after (the scoring
        thread's next large request waits for it: see ``limits.Turn``)."""
        if self._stop.is_set():  # shutting down: nothing will prepare it
            done()
            return
        self._large.append(_Large(entry, done))
        self._wake.set()

    def _full(self, rows: int) -> bool:
        return self._queued > 0 and self._queued + rows > self.max_rows

    def _enqueue(self, item: Entry, rows: int) -> None:
        with self._lock:
            if self._full(rows):
                self.metrics.log_dropped.inc(rows)
                return
            self._queued += rows
        self._queue.append(item)
        if self._queued >= _WAKE_ROWS:
            self._wake.set()

    def close(self) -> None:
        """Observe everything queued, then write the log's last rows."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=60)
        if self.log is not None:
            self.log.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(0.5)
            self._wake.clear()
            self._drain_logged(self._drain)
        self._drain_logged(self._drain)

    def _drain_logged(self, drain: Callable[[], None]) -> None:
        try:
            drain()
        except Exception:  # a bug of ours: logged, and the service goes on observing
            logger.exception("observer: a batch of answered requests not observed")

    def _drain(self) -> None:
        """The large requests waiting (each made compact, then the turn handed back), then the
        small ones."""
        while self._large:  # (only this thread takes from it)
            large = self._large.popleft()
            entry, done, large = large.entry, large.done, None
            rows = _rows(entry)
            try:
                self.prepare(entry)
            except (TypeError, ValueError, KeyError, IndexError, pa.ArrowException) as err:
                logger.warning("observer: a large request's answer not logged: %r", err)
                self.metrics.log_dropped.inc(rows)
            finally:
                entry = None  # its records go before the turn ends
                done()
                trim_heap()
        self._drain_small()

    def _drain_small(self) -> None:
        """The small requests waiting (by the event loop and this thread both: each takes what
        it pops; the queue may be empty at any moment)."""
        entries = []
        while True:
            try:
                entry = self._queue.popleft()
            except IndexError:
                break
            with self._lock:
                self._queued -= _rows(entry)  # counted as they leave the queue
            entries.append(entry)
        if entries and (table := self._table(entries)) is not None:
            self._observe(table)

    def _observe(self, table: pa.Table) -> None:
        observe_rows(self.metrics, self.ranges, table)
        if self.log is not None:
            self.log.record_table(sampled(table, self.log.sample))

    def _table(self, entries: list[Entry]) -> pa.Table | None:
        """The entries in the log's columns; one odd answer loses only itself (counted)."""
        try:
            return as_table(rows_of(entries, self.model))
        except (TypeError, ValueError, KeyError, IndexError, pa.ArrowException):
            readable = [e for e in entries if self._readable(e)]
            return as_table(rows_of(readable, self.model)) if readable else None

    def _readable(self, entry: Entry) -> bool:
        try:
            as_table(rows_of([entry], self.model))
        except (TypeError, ValueError, KeyError, IndexError, pa.ArrowException) as err:
            logger.warning("observer: a request's answer not logged: %r", err)
            self.metrics.log_dropped.inc(len(entry.answer.get("mpg", ())))
            return False
        return True


def sampled(table: pa.Table, share: float) -> pa.Table:
    """The rows of the requests a log's sample keeps (all of them at share 1)."""
    if share >= 1:
        return table
    ids = pc.unique(table["request_id"]).to_pylist()
    kept = [i for i in ids if random.random() < share]
    return table.filter(pc.is_in(table["request_id"], value_set=pa.array(kept, pa.string())))


def _rows(entry: Entry) -> int:
    return len(entry.answer.get("mpg", ()))


def observe_rows(metrics: ServiceMetrics, ranges: dict, table: pa.Table) -> None:
    """Live signals of a batch of rows, vectorised: the predicted MPG, inputs outside the
    training range per field."""
    mpg = table["mpg"].to_numpy(zero_copy_only=False)  # null (failed row): NaN
    observe_all(metrics.predicted_mpg, mpg[~np.isnan(mpg)])
    for name, (low, high) in ranges.items():
        values = table[name].to_numpy(zero_copy_only=False).astype(np.float64)
        if name == "year":
            values = np.where(values >= 1900, values - 1900, values)
        with np.errstate(invalid="ignore"):
            outside = int(((values < low) | (values > high)).sum())
        if outside:
            metrics.outside_range.labels(name).inc(outside)
