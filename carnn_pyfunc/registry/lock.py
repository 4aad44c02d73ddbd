"""A registry-wide lock built on the registry itself, so it works on any MLflow store.

The lock is a registered model (``<name>.promotion-lock``) whose description holds the holder's
token: creating a registered model is atomic in every store (SQLite, PostgreSQL, a tracking
server). A lock older than ``stale_s`` is taken to belong to a dead process and is broken.

Deleting the lock (releasing it, or breaking it as stale) must only ever delete the lock that was
looked at, never one another process took meanwhile. MLflow has no compare-and-delete, so every
delete runs under a short guard (a second registered model, ``<lock>.guard``): with the guard
held, the lock is read, and deleted only if it still holds the expected token. Since the lock can
only disappear through such a guarded delete, nobody can replace it between the read and the
delete. A guard left behind by a process that died inside those few milliseconds is broken after
``GUARD_STALE_S``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Iterator

import mlflow
from mlflow.exceptions import MlflowException

from carnn_pyfunc.registry.stages import PromotionRefused

logger = logging.getLogger(__name__)

LOCK_SUFFIX = ".promotion-lock"
GUARD_SUFFIX = ".guard"
GUARD_STALE_S = 60.0


class RegistryLock:
    """Hold ``<name>.promotion-lock`` while promoting (``with lock.held(): ...``)."""

    def __init__(
        self,
        client: mlflow.MlflowClient,
        name: str,
        *,
        timeout_s: float = 900.0,
        stale_s: float = 1800.0,
        poll_s: float = 0.2,
    ) -> None:
        self.client = client
        self.name = f"{name}{LOCK_SUFFIX}"
        self.guard = f"{self.name}{GUARD_SUFFIX}"
        self.timeout_s, self.stale_s, self.poll_s = timeout_s, stale_s, poll_s
        self.token = f"held by {socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        deadline = time.monotonic() + self.timeout_s
        while not self._create(self.name):
            holder = self._read(self.name)
            if holder is not None and time.time() - holder[1] > self.stale_s:
                logger.warning("breaking the stale promotion lock %s (%s)", self.name, holder[0])
                self._delete_if_held_by(self.name, holder[0])
            if time.monotonic() > deadline:
                raise PromotionRefused(
                    f"another promotion holds the lock {self.name!r} (waited {self.timeout_s:.0f}"
                    " s); if its process is gone, delete that registered model"
                )
            time.sleep(self.poll_s)
        try:
            yield
        finally:
            # Only our own lock: if ours was broken as stale, the lock now is someone else's.
            if not self._delete_if_held_by(self.name, self.token):
                logger.warning("the promotion lock %s was no longer ours at release", self.name)

    def _create(self, name: str) -> bool:
        try:
            self.client.create_registered_model(name, description=self.token)
        except MlflowException as err:
            if err.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            return False
        return True

    def _read(self, name: str) -> tuple[str, float] | None:
        """(holder token, creation time in seconds) of a lock, None when it does not exist."""
        try:
            model = self.client.get_registered_model(name)
        except MlflowException as err:
            if err.error_code == "RESOURCE_DOES_NOT_EXIST":
                return None
            raise
        return model.description or "", model.creation_timestamp / 1000

    def _delete_if_held_by(self, name: str, token: str) -> bool:
        """Delete the lock ``name`` if it holds ``token``; True if it was deleted."""
        with self._guarded():
            holder = self._read(name)
            if holder is None or holder[0] != token:
                return False
            self.client.delete_registered_model(name)
            return True

    @contextlib.contextmanager
    def _guarded(self) -> Iterator[None]:
        deadline = time.monotonic() + self.timeout_s
        while not self._create(self.guard):
            holder = self._read(self.guard)
            if holder is not None and time.time() - holder[1] > GUARD_STALE_S:
                logger.warning("breaking the stale guard %s (%s)", self.guard, holder[0])
                with contextlib.suppress(MlflowException):  # another breaker was first
                    self.client.delete_registered_model(self.guard)
            if time.monotonic() > deadline:
                raise PromotionRefused(f"the guard {self.guard!r} was not free in time")
            time.sleep(0.02)
        try:
            yield
        finally:
            self.client.delete_registered_model(self.guard)
