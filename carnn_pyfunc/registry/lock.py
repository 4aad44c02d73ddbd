"""A registry-wide lock built on the registry itself, so it works on any MLflow store.

The lock is a registered model (``<name>.promotion-lock``) whose description holds the holder's
token: creating a registered model is atomic in every store (SQLite, PostgreSQL, a tracking
server). While it holds the lock, the holder renews it: a heartbeat thread counts up the lock's
``heartbeat`` tag every ``beat_s``, and stops at release.

Staleness is judged on one clock only, the waiter's own monotonic clock: a lock is stale when the
waiter has seen it unchanged (same token, same heartbeat, same creation) for ``stale_s``. No time
of one machine is ever compared with a time written by another (the tracking server's timestamps
against this machine's clock would break live locks whenever the clocks disagree), so clock skew
between holder, waiter and server does not matter. The price: a waiter that finds a lock left by
a dead process watches it for ``stale_s`` before breaking it.

Deleting the lock (releasing it, or breaking it as stale) must only ever delete the lock that was
looked at, never one another process took meanwhile, nor one its holder renewed meanwhile. MLflow
has no compare-and-delete, so every delete and every heartbeat runs under a short guard (a second
registered model, ``<lock>.guard``): with the guard held, the lock is read, and deleted (or
renewed) only if it is still the one expected. Since the lock can only change through such guarded
writes, nobody can replace it between the read and the write. A guard seen unchanged for
``GUARD_STALE_S`` (its holder died inside those few milliseconds) is broken.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import NamedTuple

import mlflow
from mlflow.exceptions import MlflowException

from carnn_pyfunc.registry.stages import PromotionRefused

logger = logging.getLogger(__name__)

LOCK_SUFFIX = ".promotion-lock"
GUARD_SUFFIX = ".guard"
HEARTBEAT_TAG = "heartbeat"
GUARD_STALE_S = 60.0
BEATS_PER_STALE = 4  # heartbeats per stale interval by default: a few may fail in a row


class Seen(NamedTuple):
    """What a waiter sees of a lock; any change means its holder is alive (or another holds it)."""

    token: str
    heartbeat: str | None
    created_ms: int  # compared for equality only, never with a clock


class Watch:
    """How long (on ``clock``) the same :class:`Seen` has been looked at."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.seen: Seen | None = None
        self.since = 0.0

    def unchanged_for(self, seen: Seen) -> float:
        now = self.clock()
        if seen != self.seen:
            self.seen, self.since = seen, now
        return now - self.since


class RegistryLock:
    """Hold ``<name>.promotion-lock`` while promoting (``with lock.held(): ...``). ``clock`` is a
    monotonic clock in seconds (injectable: only its differences matter)."""

    def __init__(
        self,
        client: mlflow.MlflowClient,
        name: str,
        *,
        timeout_s: float = 900.0,
        stale_s: float = 120.0,
        poll_s: float = 0.2,
        beat_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.name = f"{name}{LOCK_SUFFIX}"
        self.guard = f"{self.name}{GUARD_SUFFIX}"
        self.timeout_s, self.stale_s, self.poll_s = timeout_s, stale_s, poll_s
        self.beat_s = beat_s if beat_s is not None else stale_s / BEATS_PER_STALE
        self.clock = clock
        self.token = f"held by {socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self.heartbeat: Heartbeat | None = None

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        deadline = self.clock() + self.timeout_s
        watch = Watch(self.clock)
        while not self._create(self.name):
            seen = self.read(self.name)
            if seen is not None and watch.unchanged_for(seen) > self.stale_s:
                logger.warning("breaking the stale promotion lock %s (%s)", self.name, seen.token)
                self._delete_if_still(self.name, seen)
            if self.clock() > deadline:
                raise PromotionRefused(
                    f"another promotion holds the lock {self.name!r} (waited {self.timeout_s:.0f}"
                    " s); if its process is gone, delete that registered model"
                )
            time.sleep(self.poll_s)
        self.heartbeat = None
        try:
            self.heartbeat = Heartbeat(self)
            yield
        finally:
            if self.heartbeat is not None:
                self.heartbeat.stop()
            # Only our own lock: if ours was broken as stale, the lock now is someone else's.
            if not self._delete_if_still(self.name, self.token):
                logger.warning("the promotion lock %s was no longer ours at release", self.name)

    def renew(self, beat: int, stopped: threading.Event) -> bool:
        """Count the lock's heartbeat up to ``beat`` if it still is ours; False if it is not.
        PromotionRefused if ``stopped`` is set while the guard is not free."""
        with self._guarded(stopped):
            seen = self.read(self.name)
            if seen is None or seen.token != self.token:
                return False
            self.client.set_registered_model_tag(self.name, HEARTBEAT_TAG, str(beat))
            return True

    def read(self, name: str) -> Seen | None:
        """What the lock (or guard) ``name`` looks like now, None when it does not exist."""
        try:
            model = self.client.get_registered_model(name)
        except MlflowException as err:
            if err.error_code == "RESOURCE_DOES_NOT_EXIST":
                return None
            raise
        return Seen(
            model.description or "", model.tags.get(HEARTBEAT_TAG), model.creation_timestamp
        )

    def _create(self, name: str) -> bool:
        try:
            self.client.create_registered_model(name, description=self.token)
        except MlflowException as err:
            if err.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            return False
        return True

    def _delete_if_still(self, name: str, expected: Seen | str) -> bool:
        """Delete the lock ``name`` if it is still ``expected`` (all it showed, or its token
        alone); True if it was deleted."""
        with self._guarded():
            seen = self.read(name)
            if seen is None or (seen.token if isinstance(expected, str) else seen) != expected:
                return False
            self.client.delete_registered_model(name)
            return True

    @contextlib.contextmanager
    def _guarded(self, stopped: threading.Event | None = None) -> Iterator[None]:
        deadline = self.clock() + self.timeout_s
        watch = Watch(self.clock)
        while not self._create(self.guard):
            seen = self.read(self.guard)
            if seen is not None and watch.unchanged_for(seen) > GUARD_STALE_S:
                logger.warning("breaking the stale guard %s (%s)", self.guard, seen.token)
                with contextlib.suppress(MlflowException):  # another breaker was first
                    self.client.delete_registered_model(self.guard)
            if self.clock() > deadline or (stopped is not None and stopped.is_set()):
                raise PromotionRefused(f"the guard {self.guard!r} was not free in time")
            time.sleep(0.02)
        try:
            yield
        finally:
            self.client.delete_registered_model(self.guard)


class Heartbeat:
    """A thread renewing ``lock`` every ``lock.beat_s`` until :meth:`stop`, or until the lock
    turns out to be someone else's (ours was broken). A failed renewal is logged and retried at
    the next beat: a few in a row stay within the stale interval."""

    def __init__(self, lock: RegistryLock) -> None:
        self.lock = lock
        self.beats = 0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"heartbeat {lock.name}", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join()

    def _run(self) -> None:
        while not self.stopped.wait(self.lock.beat_s):
            try:
                if not self.lock.renew(self.beats + 1, self.stopped):
                    logger.warning("the promotion lock %s is no longer ours", self.lock.name)
                    return
            except (MlflowException, PromotionRefused) as err:
                if not self.stopped.is_set():  # a renewal given up at release is no news
                    logger.warning("could not renew the lock %s: %s", self.lock.name, err)
                continue
            self.beats += 1
