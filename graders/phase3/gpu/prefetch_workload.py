"""The input pipeline the grader runs through the learner's ``Prefetcher`` (Task 3.5), and its truth.

* :func:`preprocess_images` is the host work: a uint8 ``[B, S, S, 3]`` image batch (HWC, as a decoder
  gives it) -> float32 ``[B, 3, out, out]``: cast, scale to [0, 1], an antialiased bilinear resize
  (``F.interpolate``) and the ImageNet normalisation. Every step is a PyTorch operator that releases the
  GIL, so it can really run on another core while the model computes.
* :class:`LoggedPreprocess` wraps it as the ``preprocess`` the learner's prefetcher calls: each call is
  logged (which item, which thread, start and end on the grader's clock), and it can be told to raise on
  one item, so "staged on another thread, ahead of the consumer" is observed, not claimed.
* :func:`fresh_items` makes fresh random image batches (numpy's generator: ~1 GB/s, untimed).
* :class:`Pipeline` is the speed workload: the model step and the sizes, balanced on this machine so that
  preprocessing one batch takes about as long as the model step (the overlap gain is then near 2x on two
  free cores), the naive loop, which times its own two halves, and :meth:`Pipeline.overlapped`, the two
  halves run at once by two grader threads with nothing handed over: what overlap can gain here, now.
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from ...harness.timing import now_ns

__all__ = ["preprocess_images", "LoggedPreprocess", "GraderPreprocessError", "fresh_items", "Pipeline",
           "pipeline_ceiling", "CPU_SPEC", "CUDA_SPEC", "PipelineSpec"]

_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def preprocess_images(images: torch.Tensor, out: int) -> torch.Tensor:
    """uint8 ``[B, S, S, 3]`` -> float32 ``[B, 3, out, out]``, resized (antialiased bilinear) and normalised."""
    x = images.permute(0, 3, 1, 2).float().div_(255.0)
    x = F.interpolate(x, size=(out, out), mode="bilinear", antialias=True, align_corners=False)
    return (x - _MEAN) / _STD


class GraderPreprocessError(RuntimeError):
    """What the grader's preprocess raises on the item it was told to fail on."""


@dataclass
class Call:
    index: int
    thread: threading.Thread
    start_ns: int
    end_ns: int


class LoggedPreprocess:
    """``preprocess(item)`` for the learner's prefetcher: :func:`preprocess_images`, with a call log.

    Items are recognised by identity (``index_of``: ``id(item) -> index``; the grader keeps the items
    alive). ``fail_at``: the item index whose call raises :class:`GraderPreprocessError` (``self.error``
    is that exception object, for the "original as ``__cause__``" check).
    """

    def __init__(self, items: list[torch.Tensor], out: int, *, fail_at: int | None = None):
        self.index_of = {id(t): i for i, t in enumerate(items)}
        self.out, self.fail_at = out, fail_at
        self.calls: list[Call] = []
        self.error: GraderPreprocessError | None = None
        self._lock = threading.Lock()

    def __call__(self, item: torch.Tensor) -> torch.Tensor:
        t0 = now_ns()
        index = self.index_of.get(id(item), -1)
        if index == self.fail_at:
            self.error = GraderPreprocessError(f"grader: item {index} is a corrupt image (token {id(self):x})")
            with self._lock:
                self.calls.append(Call(index, threading.current_thread(), t0, now_ns()))
            raise self.error
        y = preprocess_images(item, self.out)
        with self._lock:
            self.calls.append(Call(index, threading.current_thread(), t0, now_ns()))
        return y

    def snapshot(self) -> list[Call]:
        with self._lock:
            return list(self.calls)


def fresh_items(n: int, batch: int, size: int, rng: np.random.Generator | None = None) -> list[torch.Tensor]:
    """``n`` fresh random uint8 image batches ``[batch, size, size, 3]``."""
    rng = rng or np.random.default_rng()
    count = batch * size * size * 3
    return [torch.frombuffer(bytearray(rng.bytes(count)), dtype=torch.uint8).view(batch, size, size, 3)
            for _ in range(n)]


def pipeline_ceiling(p_ms: float, m_ms: float, n: int) -> float:
    """The most a two-stage pipeline can gain over running its stages one after another, for ``n`` items
    whose preprocessing takes ``p_ms`` and model step ``m_ms`` in all (per-item means ``p_ms / n``, ``m_ms / n``).

    One after another: ``p + m``. Overlapped, the first item's preprocessing and the last item's model step
    cannot overlap anything: ``(p + m) / n + (n - 1) / n * max(p, m)``. For many items this tends to
    ``(p + m) / max(p, m)``, 2x when the two stages are equal.
    """
    best = (p_ms + m_ms) / n + (n - 1) / n * max(p_ms, m_ms)
    return (p_ms + m_ms) / best


@dataclass(frozen=True)
class PipelineSpec:
    """One device's speed workload before balancing: model, batch, output size and the image-size range."""

    model: str
    out: int
    batch: int
    size0: int          # first guess of the source image size, pixels
    size_range: tuple[int, int]
    items: int          # batches per timed loop


#: CPU: the small CNN at 48x48, batch 16 (~28 ms per batch on one AVX2/AVX-512 core); images ~400 px.
CPU_SPEC = PipelineSpec(model="small_cnn", out=48, batch=16, size0=384, size_range=(192, 640), items=16)
#: CUDA: ResNet-50 at 224x224, batch 16, on the GPU; host preprocessing of 256-320 px images, one thread.
CUDA_SPEC = PipelineSpec(model="resnet50", out=224, batch=16, size0=256, size_range=(224, 384), items=16)


@dataclass
class Pipeline:
    """The speed workload on one device: ``step(x)`` is the consumer's work per batch (to the device, the
    model ``repeats`` times under inference_mode, the answer back on the host), ``preprocess`` the host work.

    The naive loop (:meth:`naive`) times its own two halves per run into ``parts``: ``(p_ms, m_ms, n)``.
    """

    spec: PipelineSpec
    model: Any
    device: str
    size: int = 0
    repeats: int = 1
    parts: list[tuple[float, float, int]] = field(default_factory=list)

    def step(self, x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            x = x.to(self.device)
            y = None
            for _ in range(self.repeats):
                y = self.model(x)
            return y.float().cpu()

    def items(self, n: int | None = None) -> list[torch.Tensor]:
        return fresh_items(n or self.spec.items, self.spec.batch, self.size)

    def naive(self, items: list[torch.Tensor], preprocess: Callable[[torch.Tensor], torch.Tensor]) -> list[torch.Tensor]:
        """``for item in items: y = step(preprocess(item))``, timing each half with the grader's clock."""
        outs, p_ns, m_ns = [], 0, 0
        for item in items:
            t0 = now_ns()
            x = preprocess(item)
            t1 = now_ns()
            outs.append(self.step(x))
            t2 = now_ns()
            p_ns, m_ns = p_ns + t1 - t0, m_ns + t2 - t1
        self.parts.append((p_ns / 1e6, m_ns / 1e6, len(items)))
        return outs

    def overlapped(self, items: list[torch.Tensor], xs: list[torch.Tensor]) -> None:
        """The machine's own overlap of the two halves: one grader thread preprocesses ``items`` while this one
        runs the model step on ``xs`` (the same items, preprocessed beforehand, untimed), starting once the first
        item's preprocessing is done, as any pipeline must. After that nothing is handed over and nothing waits:
        the most that running the two halves at once can gain on this machine, now."""
        first = threading.Event()

        def halve() -> None:
            for item in items:
                preprocess_images(item, self.spec.out)
                first.set()

        other = threading.Thread(target=halve, name="grader-overlap-preprocess", daemon=True)
        other.start()
        first.wait()
        for x in xs:
            self.step(x)
        other.join()

    def time_halves(self, reps: int = 3) -> tuple[float, float]:
        """Median per-batch ms of the preprocessing and of the model step at the current size (untimed setup)."""
        before = len(self.parts)
        pre = lambda item: preprocess_images(item, self.spec.out)  # noqa: E731
        for _ in range(reps):
            self.naive(self.items(3), pre)
        runs = self.parts[before:]
        del self.parts[before:]
        p = sorted(r[0] / r[2] for r in runs)[len(runs) // 2]
        m = sorted(r[1] / r[2] for r in runs)[len(runs) // 2]
        return p, m

    def balance(self) -> tuple[float, float]:
        """Pick the image size (and, where even the smallest image takes longer than the model, the model
        repeats) so that preprocessing a batch takes about as long as the model step. Returns (p, m) ms."""
        lo, hi = self.spec.size_range
        self.size, self.repeats = self.spec.size0, 1
        self.time_halves(1)                      # warm-up: first calls allocate, pick kernels
        for _ in range(2):
            p, m = self.time_halves()
            size = int(round(self.size * math.sqrt(m / p) / 16.0)) * 16
            size = min(hi, max(lo, size))
            if size == self.size:
                break
            self.size = size
        p, m = self.time_halves()
        if p > 1.25 * m:                         # a fast GPU: more model work per batch instead
            self.repeats = max(1, min(32, round(p / m)))
            p, m = self.time_halves()
        return p, m
