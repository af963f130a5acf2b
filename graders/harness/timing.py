"""Time a callable the way torch.utils.benchmark does: warm up, synchronise, block, keep raw samples."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

from .checked import raise_first_problem, snapshot
from .stats import Summary, summarize

__all__ = ["Timing", "time_callable", "cuda_sync", "now_ns", "GraderTimer", "timing_benchmark"]

#: The grader's clock, bound at import (before learner code is imported).
now_ns = time.perf_counter_ns


def timing_benchmark(benchmark):
    """``benchmark`` if it will really time what it is given, else None (the caller times by itself).

    pytest-benchmark runs a function once and records nothing when disabled (``--benchmark-disable``, or
    under pytest-xdist), which would leave a timing with no samples.
    """
    return None if benchmark is None or getattr(benchmark, "disabled", False) else benchmark


def cuda_sync() -> None:
    """Wait for every queued CUDA kernel (no-op without a GPU)."""
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


@dataclass(frozen=True)
class Timing:
    """Per-call times in milliseconds (each sample is one block of ``number`` calls, divided)."""

    ms: Summary
    number: int
    warmup: int

    @property
    def median_ms(self) -> float:
        return self.ms.median


def time_callable(fn: Callable[..., Any], *, repeats: int = 30, warmup: int = 5, number: int = 1,
                  sync: Callable[[], None] | None = None,
                  setup: Callable[[], tuple] | None = None,
                  check: Callable[..., str | None] | None = None) -> Timing:
    """Time ``fn`` with the grader's clock.

    Args:
        fn: the work; called as ``fn(*setup())`` when ``setup`` is given, else ``fn()``.
        repeats: timed samples to keep.
        warmup: untimed calls first (caches, lazy initialisation, allocator pools).
        number: calls per sample (a block), for work too short to time one call at a time.
        sync: called after the block inside the timed region (device work must be finished).
        setup: makes fresh inputs per sample, outside the timed region.
        check: ``check(out, *args) -> str | None`` on what every call returned (``args``: what ``fn`` was
            called with, nothing without ``setup``), warm-up calls included: None means right, else a
            one-line problem. Outputs are copied after the clock stopped and checked once all samples
            are taken, never inside the timed region (see :mod:`.checked`).
    Returns:
        Timing with per-call milliseconds.
    Raises:
        SubmissionError: ``check`` found a problem ("timed call k of n: ...").
    """
    kept: list[tuple] = []   # (out, *args) per call, when checking
    args: tuple = setup() if setup else ()
    for _ in range(warmup):
        out = fn(*args)
        if check:
            kept.append((snapshot(out), *args))
    if sync:
        sync()
    samples = []
    for _ in range(repeats):
        args = setup() if setup else ()
        if sync:
            sync()
        outs: list = []
        t0 = now_ns()
        if check:
            for _ in range(number):
                outs.append(fn(*args))  # inside the timed region, only a reference is kept
        else:
            for _ in range(number):
                fn(*args)
        if sync:
            sync()
        samples.append((now_ns() - t0) / 1e6 / number)
        kept.extend((snapshot(o), *args) for o in outs)
    raise_first_problem(kept, check, warmup=warmup)
    return Timing(ms=summarize(samples), number=number, warmup=warmup)


class GraderTimer:
    """The grader's timer for one criterion, routed through pytest-benchmark where it can be.

    pytest-benchmark allows one measurement per test, so the first :meth:`time` call of a criterion
    runs through ``benchmark.pedantic`` (its statistics land in the saved benchmark JSON) and later
    calls use :func:`time_callable`. Either way the samples come from the grader's own clock.
    """

    def __init__(self, benchmark=None):
        self.benchmark = timing_benchmark(benchmark)
        self.used = False

    def time(self, fn: Callable[[], Any], *, repeats: int = 30, warmup: int = 5,
             sync: Callable[[], None] | None = None, check: Callable[[Any], str | None] | None = None) -> Timing:
        """Per-call times of ``fn()``; ``check(out) -> str | None`` as in :func:`time_callable` (after timing)."""
        if self.benchmark is None or self.used:
            return time_callable(fn, repeats=repeats, warmup=warmup, sync=sync, check=check)
        self.used = True
        samples: list[float] = []
        kept: list[tuple] = []

        def target() -> None:
            if sync:
                sync()
            t0 = now_ns()
            out = fn()
            if sync:
                sync()
            samples.append((now_ns() - t0) / 1e6)
            if check:
                kept.append((snapshot(out),))

        self.benchmark.pedantic(target, rounds=repeats, warmup_rounds=warmup, iterations=1)
        raise_first_problem(kept, check, warmup=len(kept) - repeats if check else 0)
        return Timing(ms=summarize(samples[-repeats:]), number=1, warmup=warmup)
