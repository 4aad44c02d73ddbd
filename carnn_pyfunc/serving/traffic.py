"""Which version answers a request: the primary, a canary for a share of requests, and the
other one scoring the same rows in the background (a shadow), so every request has both answers
in the prediction log.

- The canary answers ``percent`` % of requests, chosen by a hash of the request id: a client's
  retries (same ``X-Request-Id``) land on the same version.
- The share comes from ``--canary-percent``, or, when the canary is a registered model, from the
  registered model's tag ``carnn.canary_percent`` (:data:`WEIGHT_TAG`), polled: every worker and
  replica reads the same weight, and `carnn rollout` moves it.
- Registry URIs are polled too: when ``@production`` or ``@canary`` moves to another version, the
  new one is loaded in the background and swapped in whole.
- Shadow scoring runs in a thread of its own from a bounded queue; it never adds to a request's
  latency beyond the hand-over and never fails a request.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
import zlib
from dataclasses import dataclass, field

from mlflow.exceptions import MlflowException

from carnn_pyfunc.monitoring.prediction_log import Entry, ModelId
from carnn_pyfunc.rollout.checks import WEIGHT_TAG
from carnn_pyfunc.serving.loaded import REGISTRY_URI, LoadedModel, load, registered

logger = logging.getLogger(__name__)

_SHADOW_QUEUE = 2_000  # requests waiting for shadow scoring; more are not shadowed (counted)


@dataclass
class Version:
    role: str  # primary or canary
    uri: str
    model: LoadedModel

    label: bytes = field(init=False)  # the version, for the header naming who answered
    id: ModelId = field(init=False)

    def __post_init__(self) -> None:  # once: a loaded model's info never changes
        info = self.model.info
        self.label = str(info.get("version") or info.get("run_id") or "").encode()
        self.id = ModelId(info.get("name"), info.get("version"), info.get("run_id"))


def canary_share(request_id: str, percent: float) -> bool:
    """Whether the canary answers this request: a stable hash of the id, not a coin."""
    return zlib.crc32(request_id.encode()) % 10_000 < percent * 100


class Traffic:
    """The versions a worker serves, the canary's weight, and the shadow scorer."""

    def __init__(self, primary: Version, canary: Version | None, *, shadow: Version | None,
                 percent: float | None, poll_s: float, metrics, observer) -> None:  # fmt: skip
        self.primary, self.canary, self.shadow_version = primary, canary, shadow
        self.fixed_percent = percent
        self.percent = percent or 0.0
        self.metrics, self.observer, self.poll_s = metrics, observer, poll_s
        self._jobs: collections.deque = collections.deque()
        self._wake, self._stop = threading.Event(), threading.Event()
        self._threads = [threading.Thread(target=self._shadow_loop, daemon=True,
                                          name="carnn-shadow")]  # fmt: skip
        if poll_s > 0 and any(REGISTRY_URI.match(v.uri) for v in self.versions()):
            self._threads.append(threading.Thread(target=self._poll_loop, daemon=True,
                                                  name="carnn-registry-poll"))  # fmt: skip
        self.refresh_weight()
        for thread in self._threads:
            thread.start()

    def versions(self) -> list[Version]:
        return [v for v in (self.primary, self.canary, self.shadow_version) if v is not None]

    def pick(self, request_id: str) -> tuple[Version, Version | None]:
        """(the version that answers, the one that shadows it or None)."""
        canary = self.canary
        if canary is not None and self.percent > 0 and canary_share(request_id, self.percent):
            return canary, self.primary
        return self.primary, canary if canary is not None else self.shadow_version

    # -- shadow scoring ------------------------------------------------------------------
    def shadow(self, version: Version, entry: Entry, params: dict | None) -> None:
        """Score ``entry``'s records with ``version`` in the background (logged as shadow)."""
        if len(self._jobs) >= _SHADOW_QUEUE:
            self.metrics.shadow_skipped.inc()
            return
        self._jobs.append((version, entry, params))
        if len(self._jobs) >= _SHADOW_QUEUE // 2:  # else the timer: batches, not ping-pong
            self._wake.set()

    def _shadow_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(0.25)
            self._wake.clear()
            self._drain()
        self._drain()

    def _drain(self) -> None:
        """Score what is queued in as few model calls as possible: requests of JSON records
        with the same version and params go in one batch (the vectorised path), and the
        answer is split back per request."""
        jobs = []
        while self._jobs:
            jobs.append(self._jobs.popleft())
        groups: dict[tuple, list] = {}
        for version, entry, params in jobs:
            batchable = type(entry.records) is list
            key = (id(version), repr(params), batchable or id(entry))
            groups.setdefault(key, []).append((version, entry, params))
        for group in groups.values():
            self._score_group(group)

    def _score_group(self, group: list) -> None:
        version, _, params = group[0]
        entries = [entry for _, entry, _ in group]
        records = entries[0].records if len(entries) == 1 else [
            r for e in entries for r in e.records
        ]  # fmt: skip
        started = time.perf_counter()
        try:
            answer, status = version.model.answer(records, params), 200
        except MlflowException:  # a bad row among them: request by request, as answered
            if len(entries) > 1:
                for one in group:
                    self._score_group([one])
            return
        except Exception:
            logger.exception("shadow %s failed", version.uri)
            answer = {
                "mpg": [float("nan")] * len(records),
                "error": ["INTERNAL_ERROR"] * len(records),
            }
            status = 500
        latency = (time.perf_counter() - started) * 1000 / len(entries)
        offset = 0
        for entry in entries:
            n = len(entry.answer["mpg"])
            part = {k: v[offset : offset + n] for k, v in answer.items()}
            offset += n
            self.observer.record(entry._replace(answer=part, latency_ms=latency, role="shadow",
                                                model=version.id, status=status))  # fmt: skip

    # -- the registry ---------------------------------------------------------------------
    def refresh_weight(self) -> None:
        if self.fixed_percent is not None or self.canary is None:
            self.metrics.canary_percent.set(self.percent if self.canary is not None else 0)
            return
        name = registered_name(self.canary.uri)
        if name is None:
            return
        try:
            tags = _client().get_registered_model(name).tags
            self.percent = min(100.0, max(0.0, float(tags.get(WEIGHT_TAG, 0) or 0)))
        except (MlflowException, ValueError, OSError) as err:  # keep the last weight
            logger.warning("canary weight not read (kept %.1f%%): %s", self.percent, err)
        self.metrics.canary_percent.set(self.percent)

    def _poll_loop(self) -> None:
        while not self._stop.wait(self.poll_s):
            self.refresh_weight()
            for attr in ("primary", "canary", "shadow_version"):
                current = getattr(self, attr)
                if current is not None and REGISTRY_URI.match(current.uri):
                    self._follow(attr, current)

    def _follow(self, attr: str, current: Version) -> None:
        try:
            _, version, _ = registered(current.uri)
        except (MlflowException, OSError) as err:
            logger.warning("%s: registry not read: %s", current.uri, err)
            return
        if version is None or version == current.model.info.get("version"):
            return
        logger.info("%s moved to version %s: loading it", current.uri, version)
        try:
            setattr(self, attr, Version(current.role, current.uri, load(current.uri)))
        except (MlflowException, OSError, ValueError) as err:
            logger.error("%s version %s not loaded (still serving the last): %s",
                         current.uri, version, err)  # fmt: skip

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout=30)


def registered_name(uri: str) -> str | None:
    match = REGISTRY_URI.match(uri)
    return match["name"] if match else None


def _client():
    import mlflow

    return mlflow.MlflowClient()
