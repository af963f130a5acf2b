"""The grader's own peak-memory measurement for Task 3.7, and the models it measures.

Nothing here calls the learner's code. :func:`call_peak` measures whatever a callable allocates at the
peak of one call, above what was allocated before it:

* **CPU**: PyTorch keeps no peak counter for the CPU, so the call runs under ``torch.profiler.profile(
  activities=[CPU], profile_memory=True)``, which records every allocation and free PyTorch's CPU allocator
  makes (tensors and the operators' scratch buffers, such as oneDNN's reordered convolution weights); the
  peak is the largest running sum of those events in time order. Measured here (torch 2.14, 2-core
  x86): exact and deterministic, the same byte count on every run and with 1 or 2 intra-op threads, and
  exactly linear in the batch for the grader's CNNs (:func:`random_cnn`: 0.00 % error of a line through
  batches 2 and 8 at 24 to 64). The profiler only sees the thread that started it (and its intra-op
  threads): a forward hidden on another Python thread shows no operators, so :class:`Peak` also counts
  the operators seen (``ops``) and the criteria require the model's compute layers among them.
* **CUDA**: the caching allocator's own counter: ``reset_peak_memory_stats``, ``memory_allocated`` before,
  ``max_memory_allocated`` after, synchronized on both sides. It counts every thread and stream.

Not every model is a straight line in the batch on a CPU: the catalog's ``digits_resnet18`` at 64 x 64
has a ~9.4 MB scratch buffer (oneDNN reorders the 512 x 512 x 3 x 3 weights on every call, from batch 2 on;
batch 1 takes another path) that dominates the peak below batch ~20 and is overtaken by the activations
above it, so its peak is the larger of two lines (2: 9.5 MB, 8: 9.8 MB, 32: 16.8 MB, 64: 33.6 MB). The
prediction criterion therefore uses :func:`random_cnn`, whose activations always dominate.
"""
from __future__ import annotations

import contextlib
import gc
import random
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch
from torch import nn

from ...harness import gc_paused

__all__ = ["Peak", "call_peak", "forward_peak", "naive_peak", "warm_up", "compute_layers", "random_cnn",
           "largest_fitting", "cuda_memory_cap"]


@dataclass
class Peak:
    """One measured call: ``bytes`` at its peak above the start; ``ops``, the operators the CPU profiler
    saw on the calling thread (-1 on CUDA, where the allocator counts every thread); the call's ``output``."""

    bytes: int
    ops: int
    output: Any


def _dev(device: str | torch.device) -> torch.device:
    dev = torch.device(device)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", torch.cuda.current_device())
    return dev


def call_peak(fn: Callable[[torch.Tensor], Any], x: torch.Tensor, device: str | torch.device) -> Peak:
    """Peak bytes of ONE call ``fn(x)``, in whatever grad mode ``fn`` sets itself (``x`` is already placed).

    The garbage collector is off during the call, so an unrelated collection cannot free memory inside
    the measured window. The output is kept (returned) so that it can be checked afterwards.
    """
    dev = _dev(device)
    if dev.type == "cuda":
        with gc_paused():
            torch.cuda.synchronize(dev)
            torch.cuda.reset_peak_memory_stats(dev)
            base = torch.cuda.memory_allocated(dev)
            out = fn(x)
            torch.cuda.synchronize(dev)
            peak = torch.cuda.max_memory_allocated(dev) - base
        return Peak(max(0, int(peak)), -1, out)
    from torch.profiler import ProfilerActivity, profile

    with gc_paused(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        out = fn(x)
    events = prof.profiler.kineto_results.events()
    memory = sorted(((e.start_ns(), e.nbytes()) for e in events
                     if e.name() == "[memory]" and e.device_type() == torch.autograd.DeviceType.CPU),
                    key=lambda ev: ev[0])
    ops = sum(1 for e in events if "::" in e.name())
    running = peak = 0
    for _, nbytes in memory:
        running += nbytes
        peak = max(peak, running)
    return Peak(int(peak), ops, out)


def forward_peak(model: nn.Module, x: torch.Tensor, device: str | torch.device) -> int:
    """Peak bytes of ``model(x)`` under ``torch.inference_mode`` (what ``measure_peak_bytes`` measures)."""
    def run(inp: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return model(inp)
    x = x.to(_dev(device))
    peak = call_peak(run, x, device)
    del peak.output
    return peak.bytes


def naive_peak(model: nn.Module, x: torch.Tensor, device: str | torch.device) -> Peak:
    """Peak of the naive server: a plain float32 ``model(x)`` with autograd on (every layer's input kept)."""
    def run(inp: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            return model(inp)
    return call_peak(run, x.to(_dev(device)), device)


def warm_up(model: nn.Module, shape: tuple[int, ...], device: str | torch.device, batch: int = 2) -> None:
    """One unmeasured forward, so that what a first call allocates for good (the cuBLAS workspace of the
    stream, cuDNN's handles) is not counted in the grader's first peak."""
    dev = _dev(device)
    with torch.inference_mode():
        model(torch.randn(batch, *shape, device=dev))
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def compute_layers(model: nn.Module) -> int:
    """How many convolution and linear layers ``model`` holds: the least operators a forward must show."""
    return sum(1 for m in model.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)))


def random_cnn(rng: random.Random, device: str | torch.device, *, widths: tuple[int, ...] = (16, 24, 32, 48),
               sizes: tuple[int, ...] = (32, 40, 48, 56, 64)) -> tuple[nn.Module, tuple[int, ...], str]:
    """A small CNN of random width on inputs of random size (seeded weights, eval mode, on ``device``), so
    that no figure can be known in advance. Returns (model, per-sample input shape, a description)."""
    c, s = rng.choice(widths), rng.choice(sizes)
    model = nn.Sequential(
        nn.Conv2d(3, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU(inplace=True),
        nn.Conv2d(c, 2 * c, 3, stride=2, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(2 * c, 2 * c, 3, padding=1), nn.ReLU(inplace=True),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * c, 10))
    g = torch.Generator().manual_seed(rng.randrange(2**31))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    return model.eval().to(_dev(device)), (3, s, s), f"CNN width {c}, input 3x{s}x{s}"


def largest_fitting(model: nn.Module, shape: tuple[int, ...], budget: int, device: str | torch.device, *,
                    limit: int, hint: int = 1) -> tuple[int, dict[int, int]]:
    """The grader's own answer: the largest batch ``<= limit`` whose measured peak (:func:`forward_peak`) is
    ``<= budget`` (0 if batch 1 does not fit), assuming the peak grows with the batch. Starts at ``hint``,
    steps out (1, 2, 4, ...) and bisects. Returns it and every peak measured (batch -> bytes)."""
    seen: dict[int, int] = {}

    def fits(b: int) -> bool:
        if b not in seen:
            seen[b] = forward_peak(model, torch.randn(b, *shape), device)
        return seen[b] <= budget

    if not fits(1):
        return 0, seen
    lo, hi = 1, limit + 1
    start = min(limit, max(1, hint))
    step = 1
    if fits(start):
        lo = start
        while lo < limit:
            cand = min(limit, lo + step)
            if not fits(cand):
                hi = cand
                break
            lo, step = cand, step * 2
    else:
        hi = start
        while hi - step > 1:
            cand = hi - step
            if fits(cand):
                lo = cand
                break
            hi, step = cand, step * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid
    return lo, seen


@contextlib.contextmanager
def cuda_memory_cap(device: str | torch.device, cap_bytes: int) -> Iterator[float]:
    """Cap this process's CUDA memory at what is reserved now plus ``cap_bytes``
    (``torch.cuda.set_per_process_memory_fraction``), so that asking for more raises a real
    ``torch.OutOfMemoryError``; the cap is lifted (fraction 1.0) and the cache emptied afterwards, whatever happens."""
    dev = _dev(device)
    torch.cuda.synchronize(dev)
    gc.collect()
    torch.cuda.empty_cache()
    total = torch.cuda.get_device_properties(dev).total_memory
    fraction = min(1.0, (torch.cuda.memory_reserved(dev) + int(cap_bytes)) / total)
    torch.cuda.set_per_process_memory_fraction(fraction, dev)
    try:
        yield fraction
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0, dev)
        gc.collect()
        torch.cuda.empty_cache()
