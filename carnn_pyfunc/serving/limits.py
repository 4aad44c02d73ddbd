"""Bounded work per worker: at most ``max_in_flight`` scoring requests at once; beyond it a 503
with ``Retry-After`` at once (a queue that grows only delays every answer and holds every body
in memory). A request whose work outlives its 504 keeps its slot until the work really ends."""

from __future__ import annotations

import asyncio
import contextvars

from carnn_pyfunc.serving.errors import ApiError

RETRY_AFTER_S = 1


class Slot:
    def __init__(self, slots: Slots) -> None:
        self._slots, self.held, self._free = slots, False, False

    def free(self, *_: object) -> None:
        if not self._free:
            self._free = True
            self._slots.busy -= 1

    def hold_until(self, future: asyncio.Future) -> None:
        """Keep the slot past the response, until ``future`` (the request's work) is done."""
        self.held = True
        future.add_done_callback(self.free)


class Slots:
    """The in-flight limit of one worker (one event loop: no lock needed)."""

    def __init__(self, limit: int) -> None:
        self.limit, self.busy = limit, 0
        self.current: contextvars.ContextVar[Slot | None] = contextvars.ContextVar(
            "carnn_slot", default=None
        )

    def take(self) -> Slot:
        if self.busy >= self.limit:
            raise ApiError(
                503,
                "OVERLOADED",
                f"the worker is answering {self.limit} requests already; retry in a moment",
            )
        self.busy += 1
        slot = Slot(self)
        self.current.set(slot)
        return slot

    def detach(self, future: asyncio.Future) -> None:
        """The current request answers now while its work goes on."""
        slot = self.current.get()
        if slot is not None:
            slot.hold_until(future)
