"""Bounded work per worker: at most ``max_in_flight`` scoring requests at once, and at most twice
the largest body's bytes of large bodies (read, waiting for the scoring thread or worked on);
beyond either a 503 with ``Retry-After`` at once (a queue that grows only delays every answer and
holds every body in memory). A request whose work outlives its 504 keeps what it took until the
work really ends."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import threading
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

from carnn_pyfunc.serving.errors import ApiError

logger = logging.getLogger(__name__)
RETRY_AFTER_S = 1
T = TypeVar("T")


class Slot:
    def __init__(self, slots: Slots, weight: int) -> None:
        self._slots, self.weight, self.held, self._free = slots, weight, False, False

    def free(self, *_: object) -> None:
        if not self._free:
            self._free = True
            self._slots.busy -= self.weight

    def hold_until(self, future: asyncio.Future) -> None:
        """Keep the slot past the response, until ``future`` (the request's work) is done."""
        self.held = True
        future.add_done_callback(self.free)


class Slots:
    """An in-flight limit of one worker (one event loop: no lock needed): ``limit`` requests, or
    ``limit`` bytes when each takes its weight (one request is always let in, whatever it
    weighs)."""

    def __init__(self, limit: int, what: str = "requests") -> None:
        self.limit, self.busy, self.what = limit, 0, what
        self.current: contextvars.ContextVar[Slot | None] = contextvars.ContextVar(
            "carnn_slot", default=None
        )

    def take(self, weight: int = 1) -> Slot:
        if self.busy and self.busy + weight > self.limit:
            raise ApiError(
                503,
                "OVERLOADED",
                f"the worker is answering {self.limit} {self.what} already; retry in a moment",
            )
        self.busy += weight
        slot = Slot(self, weight)
        self.current.set(slot)
        return slot

    def detach(self, future: asyncio.Future) -> None:
        """The current request answers now while its work goes on."""
        slot = self.current.get()
        if slot is not None:
            slot.hold_until(future)


class TurnNotHandedBack(RuntimeError):
    """The previous large request's records were not made compact within the timeout."""


class Turn:
    """One large request's records in memory at a time: a large request's work starts once the
    previous one's records have been made compact by the observer (or its work failed). The
    wait is bounded by ``timeout_s``: past it the work is not done (its request has had its 504
    by then) and the turn is not taken."""

    def __init__(self, timeout_s: float) -> None:
        self._free, self.timeout_s = threading.Semaphore(1), timeout_s

    def within(self, work: Callable[..., T], *args) -> T:
        """``work(*args)`` once the turn is ours; ours still after it returns (see :meth:`end`)."""
        if not self._free.acquire(timeout=self.timeout_s):
            raise TurnNotHandedBack(f"no turn in {self.timeout_s:g} s")
        try:
            return work(*args)
        except BaseException:
            self.end()
            raise

    def end(self) -> None:
        """The turn handed back (once per :meth:`within` that returned)."""
        self._free.release()

    def end_if_done(self, future) -> None:
        """For work whose request was answered without it (a 504, a cancelled request): the turn
        back when the work has returned (it holds the turn only then)."""
        if not future.cancelled() and future.exception() is None:
            self.end()


@contextlib.asynccontextmanager
async def held_while_working() -> AsyncIterator[list[Slot]]:
    """A list for the slots a request takes, freed after it unless its work goes on (a slot
    that :meth:`Slot.hold_until` the work's end)."""
    held: list[Slot] = []
    try:
        yield held
    finally:
        for slot in held:
            if not slot.held:
                slot.free()
