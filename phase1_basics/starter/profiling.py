"""Task 1.5: which operators the time goes to (torch.profiler).

Tip: the profiler's C++ side (Kineto) prints progress lines to stderr (and, on a machine without a GPU,
a harmless "gpuGetDeviceCount failed" line). Setting the environment variable ``KINETO_LOG_LEVEL=6``
before the first profile silences them.

Guide: IMPLEMENTATION_GUIDE.md#task-15-per-operator-profile
"""
from __future__ import annotations

import torch

from ..types import OpStat

__all__ = ["top_operators"]


# ---------------------------------------------------------------------------------------------------
# ## Task 1.5: per-operator profile
# ---------------------------------------------------------------------------------------------------
def top_operators(model: torch.nn.Module, example_input: torch.Tensor, *, k: int = 10, warmup: int = 2,
                  iterations: int = 5, device: str = "cpu") -> list[OpStat]:
    """Profile forward passes and return the ``k`` operators with the most self time.

    Args:
        model: the module to profile; it is put in eval mode and moved to ``device``.
        example_input: one input batch, float32 ``[B, C, H, W]`` (or whatever ``model`` takes); moved
            to ``device``.
        k: how many operators to return (int >= 1).
        warmup: unprofiled forward passes first (int >= 0).
        iterations: profiled forward passes (int >= 1), all under ``torch.inference_mode()``.
        device: "cpu" ranks by self CPU time; "cuda" / "cuda:N" ranks by self CUDA (device) time.

    Returns:
        Up to ``k`` ``OpStat`` sorted by self time, descending: ``name`` the operator (such as
        "aten::addmm"), ``self_time_ms`` its self time summed over the ``iterations`` passes (ms;
        time inside the operator itself, not in the operators it calls), ``calls`` its call count.
        Operators with no self time at all are left out (so a tiny model may give fewer than ``k``).

    Raises:
        ValueError: ``k < 1``, ``iterations < 1`` or ``warmup < 0``, before anything runs.

    Tolerance the grader applies (p1.dominant_op): exact match. Your top entry's name must be the
    operator the grader's own profile finds dominant, on a model chosen at random per grade (GEMM-heavy
    or convolution-heavy), with ``k=5`` rows at most, sorted, and a positive top self time.

    Guide: IMPLEMENTATION_GUIDE.md#task-15-per-operator-profile
    """
    # Step 0: k < 1, iterations < 1 or warmup < 0 -> ValueError.
    # Step 1: model.eval().to(device); x = example_input.to(device); everything under torch.inference_mode().
    # Step 2: `warmup` plain forward passes, then
    #   with torch.profiler.profile(activities=[ProfilerActivity.CPU] (+ ProfilerActivity.CUDA)) as prof:
    #       `iterations` forward passes (torch.cuda.synchronize() before leaving the block on a GPU)
    # Step 3: prof.key_averages() aggregates by operator name; each entry has .key, .count and
    #   .self_cpu_time_total (microseconds; .self_device_time_total on a GPU, where you keep only the
    #   operator rows: entry.device_type == torch.autograd.DeviceType.CPU and a "::" in the name, not
    #   the kernel rows or the profiler's own).
    # Step 4: drop rows with no self time; sort by self time, descending; return the first k as
    #   OpStat(name, self_time_ms=us / 1000, calls).
    raise NotImplementedError("Task 1.5: see IMPLEMENTATION_GUIDE.md#task-15-per-operator-profile")
