"""Reading a figure that lags what it counts: re-read it, briefly, until it says what is expected.

A batcher, pool or router settles a request's future and then counts it (or the other way round: the contract
does not say which); Triton records a request's statistics just after its reply; a closed pool's threads take a
moment to exit. Read the instant the last answer arrives, an honest figure may be one batch short. ``settled``
reads again until the figure is what the caller expects, for at most ``timeout_s``, and returns the last reading:
the caller's check of it stays exact.
"""
from __future__ import annotations

import time
from typing import Callable, TypeVar

__all__ = ["settled"]

T = TypeVar("T")

# Captured when the harness is imported, before any learner module: a submission that patches ``time`` cannot stop
# the wait from ending (see :mod:`.timing`).
_monotonic, _sleep = time.monotonic, time.sleep


def settled(read: Callable[[], T], done: Callable[[T], bool], timeout_s: float = 5.0) -> T:
    """``read()`` until ``done(value)`` or ``timeout_s`` seconds have passed; the last value read."""
    end = _monotonic() + timeout_s
    value = read()
    while not done(value) and _monotonic() < end:
        _sleep(0.01)
        value = read()
    return value
