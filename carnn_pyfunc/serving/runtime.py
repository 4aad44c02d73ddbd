"""The worker's interpreter around large requests: the event loop first for the GIL, the C
heap's free pages handed back after a large request.

- A large request is worked on by a thread while the event loop answers everything else. A
  thread that wants the GIL waits ``sys.getswitchinterval()`` before the holder is asked to let
  go; at CPython's 5 ms, each of the event loop's many waits under load adds up: `/ping`'s p99
  was 440 ms while 8 clients sent 100,000-row requests, ~110 ms at 0.1 ms (bench/http_bench.py).
  With no other thread busy nothing changes: the holder is only asked when someone waits.
- The cyclic collector stays on. Its passes over a 100,000-row request's million objects are
  most of that request's parsing time (330 of 460 ms) and hold the GIL, but pausing them, even
  only the full passes and only while a request is parsed and scored, let the cyclic garbage
  of failed requests (an exception's frames hold a request's records) pile up under a flood:
  a worker went past its 320 MiB (tests/test_container.py).
"""

from __future__ import annotations

import ctypes
import sys

SWITCH_INTERVAL_S = 0.0001


def favour_event_loop() -> None:
    """The GIL handed over after 0.1 ms instead of 5 ms when another thread waits for it."""
    sys.setswitchinterval(SWITCH_INTERVAL_S)


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
