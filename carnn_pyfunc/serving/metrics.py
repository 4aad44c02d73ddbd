"""Prometheus metrics of the scoring service (prometheus-client), exposed at /metrics.

With several workers (``PROMETHEUS_MULTIPROC_DIR`` set by ``carnn serve``), each worker writes
its samples to that directory and /metrics adds them up across workers.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
MPG_BUCKETS = (5, 10, 15, 20, 25, 30, 35, 40, 50, 70)
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class ServiceMetrics:
    """The service's metrics in a registry of their own (one per app)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "carnn_requests",
            "HTTP requests by route, method and status",
            ["route", "method", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "carnn_request_duration_seconds",
            "time to answer a request",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.rows = Counter("carnn_rows_predicted", "records answered with an MPG", registry=r)
        self.invalid = Counter(
            "carnn_invalid_inputs",
            "rejected requests by the field named first",
            ["field"],
            registry=r,
        )
        self.in_flight = Gauge(
            "carnn_requests_in_flight",
            "requests being answered now",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.outside_range = Counter(
            "carnn_inputs_outside_training_range",
            "scored values outside the range the model was trained on, by field",
            ["field"],
            registry=r,
        )
        self.predicted_mpg = Histogram(
            "carnn_predicted_mpg",
            "the MPG the model answered",
            buckets=MPG_BUCKETS,
            registry=r,
        )
        self.log_written = Counter(
            "carnn_prediction_log_rows_written", "rows written to the prediction log", registry=r
        )
        self.log_dropped = Counter(
            "carnn_prediction_log_rows_dropped",
            "rows not logged (the log's queue was full, or its filesystem failed)",
            registry=r,
        )
        self.labels = Counter(
            "carnn_feedback_labels", "true MPG figures received at /feedback", registry=r
        )
        self.scored = Counter(
            "carnn_scored_requests",
            "scoring requests by the role and version that answered, and status",
            ["role", "version", "status"],
            registry=r,
        )
        self.scored_latency = Histogram(
            "carnn_scored_request_duration_seconds",
            "time to answer a scoring request, by the role and version that answered",
            ["role", "version"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.canary_percent = Gauge(
            "carnn_canary_percent",
            "the share of requests the canary answers",
            registry=r,
            multiprocess_mode="max",
        )
        self.shadow_skipped = Counter(
            "carnn_shadow_skipped",
            "requests not shadow-scored (the shadow's queue was full, or a large request)",
            registry=r,
        )
        self.model = Gauge(
            "carnn_model_info",
            "the served model (value 1)",
            ["name", "version", "alias", "run_id"],
            registry=r,
            multiprocess_mode="max",
        )
        self._of_version: dict[tuple, tuple] = {}

    def of_version(self, role: str, version: str | None, status: int) -> tuple:
        """The scored counter and latency histogram of (role, version, status), looked up once
        (``labels()`` takes a lock and validates: microseconds on every one-car request)."""
        key = (role, version, status)
        children = self._of_version.get(key)
        if children is None:
            label = version or ""
            children = (self.scored.labels(role, label, str(status)),
                        self.scored_latency.labels(role, label))  # fmt: skip
            self._of_version[key] = children
        return children

    def exposition(self) -> tuple[bytes, str]:
        """The text format of every metric (summed over workers when there are several)."""
        if os.environ.get(MULTIPROCESS_DIR):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def observe_all(histogram: Histogram, values) -> None:
    """``histogram.observe(v)`` for every value of a NumPy array, in one pass per bucket: a
    100,000-row answer observed value by value held the GIL for ~100 ms. Uses the histogram's
    own buckets and sum (tests compare it with ``observe`` one by one)."""
    import numpy as np  # here: `carnn serve`'s supervisor imports this module, not NumPy

    if not len(values):
        return
    bounds = np.asarray(histogram._upper_bounds, dtype=np.float64)  # ends with +Inf
    counts = np.bincount(np.searchsorted(bounds, values, side="left"), minlength=len(bounds))
    histogram._sum.inc(float(values.sum()))
    for bucket, count in zip(histogram._buckets, counts.tolist(), strict=False):
        if count:
            bucket.inc(count)
