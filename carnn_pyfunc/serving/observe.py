"""What the service saw, off the request path: live signals in /metrics and the prediction log.

A request hands its records and answer over with one deque append; a thread of the observer's
own, twice a second, counts inputs outside the training range per field and the predicted MPG
(Prometheus), and passes each request on to the prediction log when one is configured. A
request never waits for, or fails because of, either.
"""

from __future__ import annotations

import collections
import logging
import threading

import numpy as np

from carnn_pyfunc.monitoring.prediction_log import Entry, ModelId, PredictionLog, rows_of
from carnn_pyfunc.serving.metrics import ServiceMetrics

logger = logging.getLogger(__name__)
_MAX_QUEUED = 10_000  # requests waiting for the observer; more are dropped (and counted)


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
    def __init__(
        self, metrics: ServiceMetrics, ranges: dict, log: PredictionLog | None = None
    ) -> None:
        self.metrics, self.ranges, self.log = metrics, ranges, log
        self._queue: collections.deque[Entry] = collections.deque()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="carnn-observer", daemon=True)
        self._thread.start()

    def record(self, entry: Entry) -> None:
        if len(self._queue) >= _MAX_QUEUED:
            self.metrics.log_dropped.inc(len(entry.answer["mpg"]))
            return
        self._queue.append(entry)

    def close(self) -> None:
        """Observe everything queued, then write the log's last rows."""
        self._stop.set()
        self._thread.join(timeout=60)
        if self.log is not None:
            self.log.close()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self._drain()
        self._drain()

    def _drain(self) -> None:
        entries = []
        while self._queue:
            entries.append(self._queue.popleft())
        if not entries:
            return
        model = self.log.model if self.log is not None else ModelId(None, None, None)
        try:
            columns = rows_of(entries, model)
        except (TypeError, ValueError, KeyError, IndexError):  # one odd answer: find it
            entries = [e for e in entries if self._readable(e, model)]
            columns = rows_of(entries, model)
        self._observe(columns)
        if self.log is not None:
            if self.log.sample >= 1:
                self.log.record_many(entries, columns)
            else:
                self.log.record_many(entries)

    def _readable(self, entry: Entry, model: ModelId) -> bool:
        try:
            rows_of([entry], model)
        except (TypeError, ValueError, KeyError, IndexError) as err:  # never a request's problem
            logger.warning("observer: a request's answer not logged: %r", err)
            self.metrics.log_dropped.inc(len(entry.answer.get("mpg", ())))
            return False
        return True

    def _observe(self, columns: dict[str, list]) -> None:
        """Live signals of a batch of rows, vectorised."""
        mpg = np.array(columns["mpg"], dtype=np.float64)  # None (failed row): NaN
        for value in mpg[~np.isnan(mpg)].tolist():
            self.metrics.predicted_mpg.observe(value)
        for name, (low, high) in self.ranges.items():
            values = np.array(columns[name], dtype=np.float64)
            if name == "year":
                values = np.where(values >= 1900, values - 1900, values)
            with np.errstate(invalid="ignore"):
                outside = int(((values < low) | (values > high)).sum())
            if outside:
                self.metrics.outside_range.labels(name).inc(outside)
