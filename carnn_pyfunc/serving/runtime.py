"""The worker's interpreter around large requests: the event loop first for the GIL, the cyclic
collector paused while a large request is parsed and scored, the C heap's free pages handed
back after it.

- A large request is worked on by a thread while the event loop answers everything else. A
  thread that wants the GIL waits ``sys.getswitchinterval()`` before the holder is asked to let
  go; at CPython's 5 ms, each of the event loop's many waits under load adds up: `/ping`'s p99
  was 440 ms while 8 clients sent 100,000-row requests, 90 ms at 0.1 ms (bench/http_bench.py).
  With no other thread busy nothing changes: the holder is only asked when someone waits.
- A 100,000-row request becomes about a million Python objects (lists, dicts, numbers) that
  hold no reference cycles: reference counting frees them all. The cyclic collector, left on,
  ran hundreds of times while they were made and walked all of them on each full pass: 330 ms
  of a 100,000-row request's 460 ms of parsing and scoring, in stretches of up to ~100 ms with
  the GIL held. It stays paused for a large request's whole turn (``limits.Turn``: parsed,
  scored, then made compact by the observer and freed), so no pass ever walks its objects.
"""

from __future__ import annotations

import ctypes
import gc
import sys
import threading

SWITCH_INTERVAL_S = 0.0001


def favour_event_loop() -> None:
    """The GIL handed over after 0.1 ms instead of 5 ms when another thread waits for it."""
    sys.setswitchinterval(SWITCH_INTERVAL_S)


_lock = threading.Lock()
_pausing = 0  # pauses not resumed yet
_resume = False  # whether the collector was on when the first of them began


def pause_gc() -> None:
    """No automatic cyclic collection until as many :func:`resume_gc` calls (the first pause
    stops the collector, the last resume restarts it unless it was off before); reference
    counting frees as always."""
    global _pausing, _resume
    with _lock:
        if _pausing == 0:
            _resume = gc.isenabled()
            gc.disable()
        _pausing += 1


def resume_gc() -> None:
    global _pausing
    with _lock:
        _pausing -= 1
        if _pausing == 0 and _resume:
            gc.enable()


def _malloc_trim():
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc: its heap is left as it is
        return None


_TRIM = _malloc_trim()


def trim_heap() -> None:
    """The C heap's free pages back to the system (glibc ``malloc_trim``): after a large
    request, the worker's resident size falls back instead of staying at its peak."""
    if _TRIM is not None:
        _TRIM(0)
