"""Shared fakes for the Phase 3 tests: models whose answers and timings are known, and a thread-leak guard.

Everything is small (vectors of 8 floats, models that sleep a few ms) so the folder runs in well
under a minute on two CPU cores.
"""
from __future__ import annotations

import gc
import threading
import time
from concurrent.futures import Future

import pytest
import torch

__all__ = ["RowModel", "SleepyModel", "InstantServer", "wait_threads"]

SHAPE = (8,)   # one request's input


class RowModel:
    """``[B, 8] -> [B, 3]``: row i depends only on input i (so order mistakes show), and it logs batch sizes."""

    def __init__(self) -> None:
        self.sizes: list[int] = []
        self.lock = threading.Lock()

    @staticmethod
    def expected(x: torch.Tensor) -> torch.Tensor:   # [8] -> [3]
        return torch.stack([x.sum(), x[0] * 2, x[-1] - 1])

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        with self.lock:
            self.sizes.append(batch.shape[0])
        return torch.stack([batch.sum(1), batch[:, 0] * 2, batch[:, -1] - 1], dim=1)


class SleepyModel(RowModel):
    """A RowModel whose every call sleeps ``ms`` first (and can be held at a gate)."""

    def __init__(self, ms: float, gate: threading.Event | None = None) -> None:
        super().__init__()
        self.ms, self.gate = ms, gate

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        if self.gate is not None:
            self.gate.wait(10)
        time.sleep(self.ms / 1000)
        return super().__call__(batch)


class InstantServer:
    """``submit(x) -> Future`` answered after ``ms`` by a timer thread per request (infinitely many
    servers); records arrival times, the most requests in flight, and refuses indices in ``refuse``."""

    def __init__(self, ms: float = 0.0, refuse: set[int] = frozenset()) -> None:
        self.ms, self.refuse = ms, set(refuse)
        self.arrivals: list[float] = []
        self.in_flight = self.max_in_flight = 0
        self.lock = threading.Lock()
        self.timers: list[threading.Timer] = []

    def submit(self, x) -> Future:
        with self.lock:
            k = len(self.arrivals)
            self.arrivals.append(time.perf_counter())
            if k in self.refuse:
                raise RuntimeError("refused")
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        fut: Future = Future()

        def answer() -> None:
            with self.lock:
                self.in_flight -= 1
            fut.set_result(x)

        if self.ms <= 0:
            answer()
        else:
            t = threading.Timer(self.ms / 1000, answer)
            t.daemon = True
            self.timers.append(t)
            t.start()
        return fut


def wait_threads(baseline: int, timeout_s: float = 2.0) -> int:
    """``threading.active_count()`` once it is back to ``baseline`` (or after ``timeout_s``)."""
    end = time.monotonic() + timeout_s
    while threading.active_count() > baseline and time.monotonic() < end:
        time.sleep(0.01)
    return threading.active_count()


@pytest.fixture
def no_thread_leak():
    """Fails the test if it leaves more threads running than it found."""
    before = threading.active_count()
    yield
    assert wait_threads(before) <= before, [t.name for t in threading.enumerate()]


@pytest.fixture(scope="session", autouse=True)
def steady_gc():
    """Freeze what the imports left behind, so that no full garbage collection of a few hundred thousand
    objects (100-200 ms here, every thread stopped) lands inside a timing test."""
    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()
