"""Shared fakes for the Phase 3 tests: models whose answers and timings are known, a thread-leak guard,
and ``started``, which runs a batcher without Task 3.2's ``close``.

Everything is small (vectors of 8 floats, models that sleep a few ms) so the folder runs in about 10 s
on two CPU cores (the Task 3.1 tests in about 2 s).
"""
from __future__ import annotations

import gc
import threading
import time
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Iterator

import pytest
import torch
from threadleak import no_thread_leak, wait_threads  # noqa: F401 - the fixture, shared with tests/phase3_gpu

__all__ = ["RowModel", "SleepyModel", "InstantServer", "wait_threads", "started", "stop_worker"]

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


@contextmanager
def started(batcher, timeout_s: float = 5.0) -> Iterator:
    """``with started(DynamicBatcher(...)) as b:``: ``start()`` it, and at the end stop its worker with
    ``stop_worker``, never with ``close()`` (Task 3.2), so the Task 3.1 tests pass before Task 3.2 is written."""
    batcher.start()
    try:
        yield batcher
    finally:
        stop_worker(batcher, timeout_s)


def stop_worker(batcher, timeout_s: float = 5.0) -> None:
    """Stop a started batcher's worker the way ``close(drain=True)`` tells it to, without calling ``close``.

    Uses only what the given code sets up (``__init__``, ``start``): under ``_cond``, ``_accepting = False``
    and ``_closing = True``, ``notify_all()``; the learner's ``_next_batch`` then hands out what is still
    queued and returns None, and the worker exits. Fails the test if it has not within ``timeout_s``.
    """
    with batcher._cond:
        batcher._accepting = False
        batcher._closing = True
        batcher._cond.notify_all()
    worker = batcher._worker
    if worker is not None:
        worker.join(timeout_s)
        assert not worker.is_alive(), (
            f"the worker thread did not exit within {timeout_s} s of _closing = True and notify_all(): "
            "_next_batch must return None once the batcher is closing and its queue is empty")




@pytest.fixture(scope="session", autouse=True)
def steady_gc():
    """Freeze what the imports left behind, so that no full garbage collection of a few hundred thousand
    objects (100-200 ms here, every thread stopped) lands inside a timing test."""
    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()
