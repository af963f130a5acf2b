"""Task 1.4: how much memory a model holds and how much one call needs at its peak.

Guide: IMPLEMENTATION_GUIDE.md#task-14-memory-profiling
"""
from __future__ import annotations

from typing import Callable

import torch

from ..types import MemoryReport

__all__ = ["parameter_bytes", "peak_memory_during"]


# ---------------------------------------------------------------------------------------------------
# ## Task 1.4: memory profiling
# ---------------------------------------------------------------------------------------------------
def parameter_bytes(model: torch.nn.Module) -> int:
    """Bytes held by a model's parameters AND buffers.

    Args:
        model: any ``torch.nn.Module``. Buffers count too (batch norm's running mean and variance,
            ``num_batches_tracked``); a tensor shared by two layers counts once.

    Returns:
        ``sum(t.numel() * t.element_size())`` over parameters and buffers, in bytes (int).

    Tolerance the grader applies (p1.param_bytes): exact (0 bytes off), on a model with float32
    weights, BatchNorm buffers including an int64 counter, and a float16 buffer.

    Guide: IMPLEMENTATION_GUIDE.md#task-14-memory-profiling
    """
    # Step 1: walk model.parameters() AND model.buffers() (both skip duplicates of a shared tensor).
    # Step 2: add tensor.numel() * tensor.element_size() for each; return an int.
    raise NotImplementedError("Task 1.4: see IMPLEMENTATION_GUIDE.md#task-14-memory-profiling")


def peak_memory_during(fn: Callable[[], object], *, device: str = "cpu",
                       interval_s: float = 0.0005) -> MemoryReport:
    """Run ``fn()`` once and report the memory in use before it and at its peak.

    Args:
        fn: the work to measure, taking no arguments; its return value is kept alive until the last
            sample has been taken, then dropped.
        device: "cpu" measures the process's resident set size (RSS, ``psutil``) sampled by a
            background thread; "cuda" / "cuda:N" measures bytes allocated by tensors on that device
            through PyTorch's caching allocator (``torch.cuda.max_memory_allocated(device)``; pass the
            device to every ``torch.cuda`` call, so "cuda:1" measures GPU 1, not the current one).
        interval_s: seconds between RSS samples on the CPU (float > 0; default 0.5 ms; checked on
            every device, used only on the CPU).

    Returns:
        ``MemoryReport`` in bytes: ``baseline_bytes`` just before ``fn``; ``peak_bytes`` the highest
        reading (on the CPU: every sample, including one taken right after ``fn`` returns);
        ``delta_bytes = peak_bytes - baseline_bytes``; ``device`` "cpu" or "cuda" (the kind of device,
        without an index).

    Raises:
        ValueError: ``device`` is neither "cpu" nor "cuda[:N]", or ``interval_s <= 0``; nothing is run.

    Tolerance the grader applies (p1.peak_memory, and p1.cuda_peak_memory on a GPU): ``delta_bytes``
    within 10 % of a known allocation passes, within 5 % earns full marks; ``delta_bytes`` must equal
    ``peak_bytes - baseline_bytes``. The grader's allocation is freed before ``fn`` returns.

    Guide: IMPLEMENTATION_GUIDE.md#task-14-memory-profiling
    """
    # Step 0: device neither "cpu" nor "cuda[:N]", or interval_s <= 0 -> ValueError, before running fn.
    # Step 1 (cuda, dev = torch.device(device)): torch.cuda.synchronize(dev); torch.cuda.reset_peak_memory_stats(dev);
    #   baseline = torch.cuda.memory_allocated(dev); fn(); torch.cuda.synchronize(dev);
    #   peak = torch.cuda.max_memory_allocated(dev); report device="cuda".
    # Step 2 (cpu): baseline = psutil.Process().memory_info().rss; start a threading.Thread that
    #   appends an RSS reading every interval_s until a threading.Event is set.
    # Step 3: result = fn(); take one more reading while `result` is still alive; set the event and
    #   join the thread (use try/finally so a failing fn never leaves the thread running).
    # Step 4: peak = max(baseline and every reading); delta = peak - baseline.
    raise NotImplementedError("Task 1.4: see IMPLEMENTATION_GUIDE.md#task-14-memory-profiling")
