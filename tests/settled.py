"""Reading a server's counters after its answers: the counters may lag the last answer by a moment.

A batcher, pool or router settles a request's future and then counts it (or the other way round: the contract
does not say which). A test that reads ``stats()`` the instant its last ``result()`` returns may see the last
batch not yet counted. ``settled`` reads again until the figures are what the test expects, for at most a few
seconds, and returns the last reading: the test's assertion stays exact.
"""
from __future__ import annotations

import time
from typing import Callable, TypeVar

__all__ = ["settled"]

T = TypeVar("T")


def settled(read: Callable[[], T], done: Callable[[T], bool], timeout_s: float = 5.0) -> T:
    """``read()`` until ``done(value)`` or ``timeout_s`` seconds have passed; the last value read."""
    end = time.monotonic() + timeout_s
    value = read()
    while not done(value) and time.monotonic() < end:
        time.sleep(0.01)
        value = read()
    return value
