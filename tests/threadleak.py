"""The thread-leak guard the unit tests of the threaded parts share (batchers, pools, prefetchers, routers).

``no_thread_leak`` is a fixture: a conftest imports it (``from threadleak import no_thread_leak``) and a test
that asks for it fails when it leaves more threads running than it found.
"""
from __future__ import annotations

import threading

import pytest

from graders.harness import settled

__all__ = ["wait_threads", "no_thread_leak"]


def wait_threads(baseline: int, timeout_s: float = 2.0) -> int:
    """``threading.active_count()`` once it is back to ``baseline`` (or after ``timeout_s``)."""
    return settled(threading.active_count, lambda n: n <= baseline, timeout_s)


@pytest.fixture
def no_thread_leak():
    """Fails the test if it leaves more threads running than it found."""
    before = threading.active_count()
    yield
    assert wait_threads(before) <= before, [t.name for t in threading.enumerate()]
