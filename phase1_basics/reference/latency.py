# REFERENCE SOLUTION: excluded from the learner release (make release).
"""Task 1.2: measure latency honestly (warm-up, device synchronisation, percentiles).

Guide: IMPLEMENTATION_GUIDE.md#task-12-latency-measurement
"""
from __future__ import annotations

# BEGIN SOLUTION
import time
# END SOLUTION
from typing import Callable, Sequence

# BEGIN SOLUTION
import numpy as np
# END SOLUTION
import torch

from ..types import LatencyStats

__all__ = ["device_sync", "summarize_latencies", "measure_latency"]


# ---------------------------------------------------------------------------------------------------
# Helper (written in full): wait for a device to finish its queued work
# ---------------------------------------------------------------------------------------------------
def device_sync(device: str) -> Callable[[], None]:
    """Return a function that blocks until ``device`` has finished all queued work.

    ``torch.cuda.synchronize`` for "cuda" / "cuda:N" (CUDA kernels are launched asynchronously: a
    call returns as soon as the work is queued); a no-op for "cpu", whose calls finish before they
    return. ONNX Runtime's ``session.run`` is synchronous, so "cpu" is right for ONNX predictors too.
    """
    if str(device).startswith("cuda"):
        index = torch.device(device).index

        def sync_cuda() -> None:
            torch.cuda.synchronize(index)

        return sync_cuda

    def sync_nothing() -> None:
        return None

    return sync_nothing


# ---------------------------------------------------------------------------------------------------
# ## Task 1.2: latency measurement
# ---------------------------------------------------------------------------------------------------
def summarize_latencies(samples_ms: Sequence[float]) -> LatencyStats:
    """Summarise latency samples into exact statistics.

    Args:
        samples_ms: one latency per call, in milliseconds (any sequence of floats, length >= 1).

    Returns:
        ``LatencyStats`` in ms: mean; population std (ddof=0); p50/p90/p95/p99 with numpy's default
        "linear" interpolation (``np.percentile``); min; max; ``cv = std_ms / mean_ms`` (unitless;
        ``nan`` if the mean is 0); ``n_samples``; and ``samples_ms`` as a list of floats, in order.

    Raises:
        ValueError: ``samples_ms`` is empty.

    Tolerance the grader applies (p1.stats_exact): relative error <= 1e-9 against numpy on every field.

    Guide: IMPLEMENTATION_GUIDE.md#task-12-latency-measurement
    """
    # BEGIN SOLUTION
    # Step 1: float64 numpy array; refuse an empty one.
    arr = np.asarray(samples_ms, dtype=np.float64).ravel()   # [N]
    if arr.size == 0:
        raise ValueError("summarize_latencies needs at least one sample")
    # Step 2: the statistics, all from numpy so they match the grader exactly.
    mean = float(arr.mean())
    std = float(arr.std())                                    # ddof=0
    p50, p90, p95, p99 = (float(v) for v in np.percentile(arr, [50, 90, 95, 99]))
    cv = std / mean if mean != 0 else float("nan")
    return LatencyStats(mean_ms=mean, std_ms=std, p50_ms=p50, p90_ms=p90, p95_ms=p95, p99_ms=p99,
                        min_ms=float(arr.min()), max_ms=float(arr.max()), cv=cv,
                        n_samples=int(arr.size), samples_ms=[float(v) for v in arr])
    # END SOLUTION
    """ # BEGIN PROMPT
    # Step 1: arr = np.asarray(samples_ms, dtype=np.float64); an empty array -> ValueError.
    # Step 2: mean, std (np.std's default ddof=0 is the population std), np.percentile(arr, [50, 90, 95, 99]),
    #   min, max, cv = std / mean (float("nan") when the mean is 0). Convert every numpy scalar with
    #   float(...) before storing it.
    # Step 3: return LatencyStats(..., n_samples=len(arr), samples_ms=[float(v) for v in arr]).
    raise NotImplementedError("Task 1.2: see IMPLEMENTATION_GUIDE.md#task-12-latency-measurement")
    """  # END PROMPT


def measure_latency(fn: Callable[[], object], *, warmup: int = 10, iterations: int = 100,
                    sync: Callable[[], None] | None = None) -> LatencyStats:
    """Time ``fn()`` after a warm-up, one sample per call.

    Args:
        fn: the work to time, taking no arguments (build inputs BEFORE, outside ``fn``).
        warmup: untimed calls first (int >= 0), followed by one ``sync()``.
        iterations: timed calls (int >= 1); each is timed with ``time.perf_counter_ns`` from just
            before ``fn()`` until ``sync()`` has returned after it.
        sync: blocks until the device has finished (``device_sync(device)``); None means no-op.

    Returns:
        ``summarize_latencies`` of the ``iterations`` samples, in milliseconds.

    Raises:
        ValueError: ``warmup < 0`` or ``iterations < 1``.

    Tolerance the grader applies: p1.known_latency, a workload whose first calls are slow and whose
    true times the grader records, read back with mean/p50/p90 errors <= 10 % (full marks 5 %);
    p1.async_sync, a simulated asynchronous device whose work only completes when ``sync()`` is
    called, read to completion within 10 % (5 %), so ``sync()`` belongs inside the timed region;
    p1.p50_agrees, your p50 of a small CNN within 15 % (5 %) of the grader's own; p1.run_to_run, the
    robust coefficient of variation (1.4826 * MAD / median) of your p50 over 5 runs <= 5 % (2 %).

    Guide: IMPLEMENTATION_GUIDE.md#task-12-latency-measurement
    """
    # BEGIN SOLUTION
    if warmup < 0 or iterations < 1:
        raise ValueError(f"need warmup >= 0 and iterations >= 1, got warmup={warmup}, iterations={iterations}")
    sync = sync if sync is not None else device_sync("cpu")
    # Step 1: warm up (allocator pools, kernel selection, caches), then drain the device queue.
    for _ in range(warmup):
        fn()
    sync()
    # Step 2: time each call INCLUDING the sync, with the nanosecond monotonic clock.
    samples_ns = []
    for _ in range(iterations):
        start = time.perf_counter_ns()
        fn()
        sync()
        samples_ns.append(time.perf_counter_ns() - start)
    # Step 3: nanoseconds -> milliseconds, then the statistics.
    return summarize_latencies([ns / 1e6 for ns in samples_ns])
    # END SOLUTION
    """ # BEGIN PROMPT
    # Step 1: warmup < 0 or iterations < 1 -> ValueError; sync=None means "nothing to wait for".
    # Step 2: call fn() `warmup` times, untimed, then sync() once.
    # Step 3: for each iteration: start = time.perf_counter_ns(); fn(); sync(); record the elapsed ns.
    #   The sync() goes INSIDE the timed region: on a GPU, fn() returns when the work is queued.
    # Step 4: convert ns -> ms (divide by 1e6) and return summarize_latencies(samples).
    raise NotImplementedError("Task 1.2: see IMPLEMENTATION_GUIDE.md#task-12-latency-measurement")
    """  # END PROMPT
