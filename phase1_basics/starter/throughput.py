"""Task 1.3: throughput (samples per second) against batch size.

Guide: IMPLEMENTATION_GUIDE.md#task-13-throughput-against-batch-size
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch

from ..types import ThroughputPoint

__all__ = ["measure_throughput"]


# ---------------------------------------------------------------------------------------------------
# ## Task 1.3: throughput against batch size
# ---------------------------------------------------------------------------------------------------
def measure_throughput(predictor: Callable[[torch.Tensor], object], make_batch: Callable[[int], torch.Tensor],
                       batch_sizes: Sequence[int], *, warmup: int = 3, iterations: int = 20,
                       sync: Callable[[], None] | None = None) -> list[ThroughputPoint]:
    """Measure samples per second at each batch size.

    Args:
        predictor: maps a batch ``[B, C, H, W]`` to outputs (a ``Predictor`` or any callable).
        make_batch: ``make_batch(b)`` returns a float32 batch ``[b, C, H, W]``; called once per batch
            size, OUTSIDE the timed region.
        batch_sizes: the batch sizes to try (ints >= 1), in the order wanted.
        warmup: untimed calls per batch size (int >= 0).
        iterations: timed calls per batch size (int >= 1).
        sync: blocks until the device has finished (``device_sync(device)``); None means no-op.

    Returns:
        One ``ThroughputPoint`` per batch size, in the order given (an empty list for no batch
        sizes): ``latency_ms`` the median time of one batch call (ms),
        ``samples_per_s = batch_size / (latency_ms / 1000)`` (samples/s).

    Raises:
        ValueError: any batch size below 1, ``warmup < 0`` or ``iterations < 1``, checked up front,
            before any batch is built or timed.

    Tolerance the grader applies (p1.throughput_agrees): at every batch size your samples/s within
    20 % of the grader's own measurement of the same predictor (full marks 10 %), and
    ``samples_per_s * latency_ms / 1000 / batch_size`` within 2 % of 1.

    Guide: IMPLEMENTATION_GUIDE.md#task-13-throughput-against-batch-size
    """
    # Step 1: validate up front: any batch size < 1, warmup < 0 or iterations < 1 -> ValueError.
    # Step 2: for each batch size, in order: batch = make_batch(bs), BEFORE timing.
    # Step 3: reuse your Task 1.2 timer (from .latency import measure_latency):
    #   stats = measure_latency(lambda: predictor(batch), warmup=..., iterations=..., sync=sync)
    # Step 4: latency_ms = stats.p50_ms (the median call); samples_per_s = bs / (latency_ms / 1000).
    raise NotImplementedError("Task 1.3: see IMPLEMENTATION_GUIDE.md#task-13-throughput-against-batch-size")
