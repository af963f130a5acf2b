# REFERENCE SOLUTION: excluded from the learner release (make release).
"""Task 1.6: the same model on the CPU and on an NVIDIA GPU, side by side.

Guide: IMPLEMENTATION_GUIDE.md#task-16-cpu-versus-gpu
"""
from __future__ import annotations

from typing import Callable

import torch

# BEGIN SOLUTION
from .latency import device_sync, measure_latency
# END SOLUTION
from ..types import DeviceResult

__all__ = ["DEVICES", "compare_devices"]

#: The rows ``compare_devices`` returns, in this order.
DEVICES = ("cpu", "cuda")


# ---------------------------------------------------------------------------------------------------
# ## Task 1.6: CPU versus GPU
# ---------------------------------------------------------------------------------------------------
def compare_devices(build_model: Callable[[], torch.nn.Module], make_input: Callable[[int], torch.Tensor], *,
                    batch_size: int = 1, warmup: int = 5, iterations: int = 50) -> list[DeviceResult]:
    """Measure the same model's latency on the CPU and, when there is one, on a CUDA GPU.

    Args:
        build_model: returns a fresh ``torch.nn.Module`` on the CPU (called once per device).
        make_input: ``make_input(b)`` returns a float32 CPU batch ``[b, C, H, W]``.
        batch_size: the batch size for both devices (int >= 1).
        warmup: untimed calls per device (int >= 0).
        iterations: timed calls per device (int >= 1).

    Returns:
        Exactly two ``DeviceResult`` rows, "cpu" then "cuda". A measured row has ``available=True``,
        ``p50_ms`` from ``measure_latency`` (ms) and ``samples_per_s = batch_size / (p50_ms / 1000)``.
        Without a GPU the "cuda" row has ``available=False``, ``p50_ms=None``, ``samples_per_s=None``
        and a ``reason`` such as "no CUDA device (torch.cuda.is_available() is False)".

    Raises:
        ValueError: ``batch_size < 1``, ``warmup < 0`` or ``iterations < 1``, before any model is built.

    Tolerance the grader applies: p1.device_rows, rows ("cpu", "cuda") in that order, a skipped row
    with ``p50_ms=None`` and a reason, and your CPU p50 within 25 % of the grader's own (full marks
    10 %); p1.cuda_latency (GPU machines only), your CUDA p50 within 25 % (10 %) of the grader's
    synchronised measurement.

    Guide: IMPLEMENTATION_GUIDE.md#task-16-cpu-versus-gpu
    """
    # BEGIN SOLUTION
    if batch_size < 1 or warmup < 0 or iterations < 1:
        raise ValueError(f"need batch_size >= 1, warmup >= 0 and iterations >= 1; "
                         f"got {batch_size}, {warmup}, {iterations}")
    rows = []
    for device in DEVICES:
        # Step 1: a device we cannot use still gets its row, with the reason.
        if device == "cuda" and not torch.cuda.is_available():
            rows.append(DeviceResult(device="cuda", available=False, p50_ms=None, samples_per_s=None,
                                     reason="no CUDA device (torch.cuda.is_available() is False)"))
            continue
        # Step 2: a fresh model and input, both on the device, before any timing.
        model = build_model().eval().to(device)
        x = make_input(batch_size).to(device)                  # [B, C, H, W]

        def forward() -> None:
            with torch.inference_mode():
                model(x)  # noqa: F821 - defined above; deleted only after the last call

        # Step 3: time it with the device's sync inside the timed region.
        stats = measure_latency(forward, warmup=warmup, iterations=iterations, sync=device_sync(device))
        rows.append(DeviceResult(device=device, available=True, p50_ms=stats.p50_ms,
                                 samples_per_s=batch_size / (stats.p50_ms / 1000.0)))
        del model, x
    return rows
    # END SOLUTION
    """ # BEGIN PROMPT
    # Step 0: batch_size < 1, warmup < 0 or iterations < 1 -> ValueError, before building anything.
    # Step 1: for device in DEVICES. For "cuda" when torch.cuda.is_available() is False, append
    #   DeviceResult("cuda", available=False, p50_ms=None, samples_per_s=None, reason="...") and go on.
    # Step 2: model = build_model().eval().to(device); x = make_input(batch_size).to(device), untimed.
    # Step 3: stats = measure_latency(<forward under torch.inference_mode()>, warmup=..., iterations=...,
    #   sync=device_sync(device))   (from .latency import device_sync, measure_latency)
    # Step 4: DeviceResult(device, True, stats.p50_ms, batch_size / (stats.p50_ms / 1000)).
    raise NotImplementedError("Task 1.6: see IMPLEMENTATION_GUIDE.md#task-16-cpu-versus-gpu")
    """  # END PROMPT
