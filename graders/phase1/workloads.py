"""Workloads the Phase 1 grader measures the learner's tools against.

Each one knows its own truth: the latency workloads time themselves with the grader's clock from
inside the call, so the learner's measurement (taken outside the call) is compared with what really
happened, noise included, rather than with a nominal figure.
"""
from __future__ import annotations

import mmap
import random

import numpy as np
import torch
from torch import nn

from ..harness.timing import now_ns

__all__ = ["busy_wait_ms", "KnownLatency", "AsyncDevice", "small_model", "dominant_op_model", "fresh_resident_bytes"]


def fresh_resident_bytes(nbytes: int) -> np.ndarray:
    """``nbytes`` of memory certainly new to this process, every page written: RSS rises by ``nbytes``.

    ``np.ones`` goes through malloc, which may hand back a freed heap chunk the process still holds;
    those pages are already resident and raise no RSS (seen in CI: a 64 MiB array read as 0 MiB).
    An anonymous mmap always maps new pages. Returns a uint8 array of ones that owns the mapping; the
    pages go back to the system when the array is dropped.
    """
    view = np.frombuffer(mmap.mmap(-1, nbytes), dtype=np.uint8)
    view.fill(1)
    return view


def busy_wait_ms(ms: float) -> None:
    """Spin for ``ms`` milliseconds (sleep would hand the core away and add scheduler jitter)."""
    end = now_ns() + int(ms * 1e6)
    while now_ns() < end:
        pass


class KnownLatency:
    """A callable whose calls take known times: slow cold starts, then a seeded mixture.

    ``observed_ms`` holds the grader-clock duration of every call, measured inside the call.
    """

    def __init__(self, seed: int, *, cold_calls: int = 5, cold_ms: float = 25.0):
        self.rng = random.Random(seed)
        self.cold_calls, self.cold_ms = cold_calls, cold_ms
        self.observed_ms: list[float] = []

    def __call__(self) -> None:
        if len(self.observed_ms) < self.cold_calls:
            target = self.cold_ms
        else:  # 80% around 2 ms, 20% around 5 ms: p90 sits in the slow mode
            target = self.rng.uniform(1.8, 2.4) if self.rng.random() < 0.8 else self.rng.uniform(4.5, 5.5)
        t0 = now_ns()
        busy_wait_ms(target)
        self.observed_ms.append((now_ns() - t0) / 1e6)


class AsyncDevice:
    """A simulated asynchronous device: ``launch()`` queues work and returns at once; ``sync()`` waits.

    This is how CUDA behaves: a kernel launch returns in microseconds and the work finishes later.
    Each job's true latency, from its launch until a ``sync()`` saw it finished, is measured with the
    grader's clock (``latency_ms``), so scheduler noise counts the same on both sides.
    """

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.busy_until = 0
        self.launched: list[int] = []
        self.latency_ms: list[float] = []

    def launch(self) -> None:
        ms = self.rng.uniform(2.0, 3.0)
        now = now_ns()
        self.launched.append(now)
        self.busy_until = max(self.busy_until, now) + int(ms * 1e6)

    def sync(self) -> None:
        while now_ns() < self.busy_until:
            pass
        done = now_ns()
        while len(self.latency_ms) < len(self.launched):
            self.latency_ms.append((done - self.launched[len(self.latency_ms)]) / 1e6)


def small_model(seed: int = 0) -> nn.Module:
    """A small CNN with a stable latency of a few ms on a CPU core: [B, 3, 32, 32] -> [B, 10]."""
    g = torch.Generator().manual_seed(seed)
    m = nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.Conv2d(32, 64, 3, padding=1, stride=2), nn.BatchNorm2d(64), nn.ReLU(),
        nn.Conv2d(64, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10),
    )
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    return m.eval()


def dominant_op_model(kind: str) -> tuple[nn.Module, torch.Tensor]:
    """A model where one operator takes most of the self time: ``"linear"`` or ``"conv"``."""
    if kind == "linear":  # one big GEMM (aten::addmm) after a tiny conv
        m = nn.Sequential(nn.Conv2d(3, 4, 1), nn.Flatten(), nn.Linear(4 * 16 * 16, 2048), nn.ReLU(),
                          nn.Linear(2048, 2048))
        x = torch.randn(256, 3, 16, 16)
    elif kind == "conv":  # wide 3x3 convolutions on a large map, a tiny linear head
        m = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), nn.Conv2d(64, 64, 3, padding=1),
                          nn.Conv2d(64, 64, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(64, 10))
        x = torch.randn(4, 3, 96, 96)
    else:
        raise ValueError(kind)
    return m.eval(), x
