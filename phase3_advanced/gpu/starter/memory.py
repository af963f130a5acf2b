"""Task 3.7: memory under a budget: measure a forward's peak, predict it, size the batch to a budget,
survive out-of-memory, and serve with the least memory.

Guide: GPU_OPTIMIZATION_GUIDE.md#task-37-memory-under-a-budget
"""
from __future__ import annotations

import copy
from typing import Callable, Sequence

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

from ..types import MemoryModel

__all__ = ["measure_peak_bytes", "fit_memory_model", "largest_batch_under_budget", "OomSafeRunner", "lean_forward"]

ModelFn = Callable[[torch.Tensor], torch.Tensor]


# ---------------------------------------------------------------------------------------------------
# Helpers (written in full)
# ---------------------------------------------------------------------------------------------------
def cpu_memory_events(prof: profile) -> list[tuple[int, int]]:
    """``(start_ns, nbytes)`` of every CPU allocation (``nbytes > 0``) and free (``< 0``) a finished
    ``torch.profiler.profile(..., profile_memory=True)`` recorded, in time order (helper, written in full).
    It sees every tensor and scratch buffer PyTorch allocates on the profiling thread, exactly, every run.
    """
    events = [(e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events()
              if e.name() == "[memory]" and e.device_type() == torch.autograd.DeviceType.CPU]
    events.sort(key=lambda ev: ev[0])   # stable: events of the same nanosecond keep their recorded order
    return events


def free_cuda_memory() -> None:
    """Empty PyTorch's CUDA cache after a failed (out-of-memory) attempt (helper, written in full; no-op
    without CUDA). Call it after the ``except`` block: the error's traceback holds the failed tensors."""
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _device_of(device: str | torch.device | None, x: torch.Tensor | None = None) -> torch.device:
    """``device`` as a torch.device (None: ``x``'s, else the CPU) (helper, written in full)."""
    if device is None:
        return x.device if x is not None else torch.device("cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", torch.cuda.current_device())
    return dev


# ---------------------------------------------------------------------------------------------------
# ## Task 3.7 (1/5): how much memory does one forward pass need?
# ---------------------------------------------------------------------------------------------------
def measure_peak_bytes(model: nn.Module | ModelFn, x: torch.Tensor, *, device: str | torch.device | None = None) -> int:
    """Bytes allocated at the peak of ONE forward ``model(x)`` under ``torch.inference_mode``, above
    what was allocated just before it.

    Args:
        model: the model (already on ``device``, in eval mode) or any callable ``[B, ...] -> Tensor``.
        x: one batch ``[B, ...]``; moved to ``device`` *before* the measurement starts.
        device: where to run: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``; None: ``x.device``.

    Returns:
        The peak, in bytes (an int >= 0): the activations, the operators' scratch space and the output,
        not the weights nor the input (they were allocated before the forward began).

    How: on CUDA the caching allocator's own peak counter (``torch.cuda.max_memory_allocated``, reset
    first). The CPU has no such counter: profile the forward with ``profile_memory=True`` and take the
    largest running sum of its allocation (+) and free (-) events. Both are exact, the same every run.

    Tolerance the grader applies (p3.gpu.memory_predict, p3.gpu.memory_budget): the grader measures
    the same peak with its own code (graders/phase3/gpu/memory_probe.py); your fit and your search are
    judged against its figures, so yours should agree with it to the byte on a CPU.

    Guide: GPU_OPTIMIZATION_GUIDE.md#task-37-memory-under-a-budget
    """
    # Step 1: dev = torch.device(device) if device is not None else x.device; x = x.to(dev) (before measuring).
    # Step 2 (CUDA): torch.cuda.synchronize(dev); torch.cuda.reset_peak_memory_stats(dev);
    #   base = torch.cuda.memory_allocated(dev); under torch.inference_mode(): y = model(x);
    #   synchronize again; return torch.cuda.max_memory_allocated(dev) - base.
    # Step 3 (CPU): with torch.inference_mode(), profile(activities=[ProfilerActivity.CPU], profile_memory=True)
    #   as prof: run y = model(x) (then del y). Walk cpu_memory_events(prof) in order, adding each nbytes to a
    #   running total, and return the largest value the total reached (0 if it never went above 0).
    raise NotImplementedError("Task 3.7: see GPU_OPTIMIZATION_GUIDE.md#task-37-memory-under-a-budget")


# ---------------------------------------------------------------------------------------------------
# ## Task 3.7 (2/5): peak memory as a straight line in the batch size
# ---------------------------------------------------------------------------------------------------
def fit_memory_model(model: nn.Module | ModelFn, input_shape: Sequence[int], *, device: str = "cpu",
                     batch_sizes: Sequence[int] = (2, 8), dtype: torch.dtype = torch.float32) -> MemoryModel:
    """Measure the forward's peak at a few batch sizes and fit ``peak = fixed + per_sample * batch``.

    Args:
        model: the model (on ``device``, in eval mode) or a callable ``[B, *input_shape] -> Tensor``.
        input_shape: one sample's shape, without the batch dimension, e.g. ``(3, 64, 64)``.
        device: where to measure (``"cpu"``, ``"cuda"``, ``"cuda:N"``).
        batch_sizes: at least two distinct batch sizes (>= 1), e.g. ``(2, 8)``: small, so that fitting is
            cheap and never runs out of memory itself.
        dtype: the inputs' dtype.

    Returns:
        ``MemoryModel(fixed_bytes, bytes_per_sample, batch_sizes, measured_bytes)``: the least-squares line
        through the points ``(batch, measure_peak_bytes(model, fresh random input of that batch))`` (with
        two points, the line through both), ``batch_sizes`` as a tuple of ints in the order given and
        ``measured_bytes`` the peak measured at each. ``model.predict(b)`` then extrapolates to any batch.

    Raises:
        ValueError: fewer than two distinct batch sizes, a batch size < 1, or a fitted slope <= 0 (the
            peak did not grow with the batch: nothing can be predicted from it).

    Tolerance the grader applies (p3.gpu.memory_predict): your fit at batches (2, 8) ((8, 32) on a GPU)
    predicts the peak the grader measures itself at larger batches it picks at random (24 to 64 on a
    CPU, 64 to 512 on a GPU) on a CNN it draws at random; the error |predicted - measured| / measured
    must be under 10 % (5 % for full marks). The line must pass through your own measured points
    (within 1 %), with a slope > 0.

    Guide: GPU_OPTIMIZATION_GUIDE.md#task-37-memory-under-a-budget
    """
    # Step 1: sizes = tuple(int(b) for b in batch_sizes); fewer than two distinct sizes, or one < 1 -> ValueError.
    # Step 2: warm up: one untimed forward (under torch.inference_mode) at sizes[0], so that what a first call
    #   allocates for good (cuBLAS workspace on a GPU) is not counted as part of a peak.
    # Step 3: for each b: x = torch.randn(b, *input_shape, device=device).to(dtype) (fresh each time);
    #   measured.append(measure_peak_bytes(model, x, device=device)).
    # Step 4: least squares: slope = sum((b - mean_b) * (m - mean_m)) / sum((b - mean_b) ** 2),
    #   fixed = mean_m - slope * mean_b (with two points this is the line through both).
    #   slope <= 0 -> ValueError (the peak did not grow with the batch).
    # Step 5: return MemoryModel(fixed, slope, sizes, tuple(measured)).
    raise NotImplementedError("Task 3.7: see GPU_OPTIMIZATION_GUIDE.md#task-37-memory-under-a-budget")


# ---------------------------------------------------------------------------------------------------
# ## Task 3.7 (3/5): the largest batch that fits a memory budget
# ---------------------------------------------------------------------------------------------------
def largest_batch_under_budget(model: nn.Module | ModelFn, input_shape: Sequence[int], budget_bytes: int, *,
                               device: str = "cpu", limit: int = 1024) -> int:
    """The largest batch ``B <= limit`` whose *measured* forward peak fits ``budget_bytes``.

    Args:
        model: the model (on ``device``, in eval mode) or a callable ``[B, *input_shape] -> Tensor``.
        input_shape: one sample's shape, without the batch dimension.
        budget_bytes: the most bytes one forward may allocate at its peak (``measure_peak_bytes``'s unit).
        device: where to measure.
        limit: the largest batch worth considering (>= 1).

    Returns:
        ``B`` (an int, ``0 <= B <= limit``): ``measure_peak_bytes`` at ``B`` is ``<= budget_bytes`` and at
        ``B + 1`` it is not (or ``B == limit``); 0 when not even batch 1 fits.

    How:
        The memory model's guess (``fit_memory_model(...).max_batch(budget_bytes)``, clipped to
        ``[1, limit]``) is only a starting point: measure it. If it fits, step up (+1, +2, +4, ...) until
        a batch does not; if not, step down the same way until one does; then bisect between the
        largest batch known to fit and the smallest known not to. A guess from a good line is right or
        off by one, so this takes a handful of measurements. On a GPU, a measurement that raises
        ``torch.OutOfMemoryError`` is an answer too: that batch does not fit (free the memory with
        ``free_cuda_memory()`` once out of the ``except`` block, and go on searching).

    Raises:
        ValueError: ``limit < 1``.

    Tolerance the grader applies (p3.gpu.memory_budget): on a budget set from the grader's own
    measurements, the grader's measured peak at your B must be <= the budget, and B must be at least
    90 % of the true largest batch (which the grader finds itself); a budget below batch 1's peak must
    give 0 and a budget above ``limit``'s peak must give ``limit``. On a GPU the grader also caps this
    process's CUDA memory (``torch.cuda.set_per_process_memory_fraction``) while your search runs, so
    probing far beyond the budget raises real out-of-memory errors.

    Guide: GPU_OPTIMIZATION_GUIDE.md#task-37-memory-under-a-budget
    """
    # Step 1: limit < 1 -> ValueError. Write fits(b) -> bool: measure_peak_bytes(model, torch.randn(b, *input_shape,
    #   device=device), device=device) <= budget_bytes; a torch.OutOfMemoryError means False (set a flag in the
    #   except block, call free_cuda_memory() after it). Remember each answer in a dict: measurements cost time.
    # Step 2: if not fits(1): return 0.
    # Step 3: if limit == 1: return 1. guess = fit_memory_model(model, input_shape, device=device, batch_sizes=
    #   (2, 8) if limit >= 8 else (1, limit)).max_batch(budget_bytes), clipped to [1, limit] (if it raises: 1).
    # Step 4: keep lo = largest batch known to fit, hi = smallest known not to (limit + 1 at first).
    #   fits(guess): lo = guess, then try lo + 1, lo + 2, lo + 4, ... (never above limit) until one does not fit;
    #   else: hi = guess, then try hi - 1, hi - 2, hi - 4, ... (never below 1) until one fits.
    # Step 5: bisect while hi - lo > 1 (mid = (lo + hi) // 2), and return lo.
    raise NotImplementedError("Task 3.7: see GPU_OPTIMIZATION_GUIDE.md#task-37-memory-under-a-budget")


# ---------------------------------------------------------------------------------------------------
# ## Task 3.7 (4/5): out of memory is an answer, not a crash
# ---------------------------------------------------------------------------------------------------
class OomSafeRunner:
    """Serves a model on batches of any size without ever crashing on out-of-memory.

    It runs the model on chunks of at most ``max_batch`` rows; when a chunk raises
    ``torch.OutOfMemoryError`` it halves ``max_batch`` and retries that chunk, so the request is still
    answered, and every later call starts from the size that worked.

    Usage: ``runner = OomSafeRunner(lambda x: model(x.cuda()).cpu(), max_batch=512); y = runner(x)``
    (x: [B, ...] of any B; y: model(x), in the same row order); then ``runner.max_batch, runner.oom_events``.
    """

    def __init__(self, model_fn: ModelFn, max_batch: int) -> None:
        """Store the model function and the starting chunk size (helper, written in full).

        Args:
            model_fn: ``[b, ...] -> [b, ...]``, row i of the output belongs to row i of the input; may
                raise ``torch.OutOfMemoryError`` when ``b`` is too large.
            max_batch: the largest chunk to try first (>= 1).

        Attributes:
            max_batch: the chunk size now in force (halved at each out-of-memory, never grown back).
            oom_events: how many chunks raised ``torch.OutOfMemoryError`` so far.

        Raises:
            ValueError: ``max_batch < 1`` or ``model_fn`` not callable.
        """
        if not callable(model_fn):
            raise ValueError(f"model_fn must be callable, got {type(model_fn).__name__}")
        if int(max_batch) < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.model_fn = model_fn
        self.max_batch = int(max_batch)
        self.oom_events = 0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """``model_fn`` over all of ``x``, in chunks of at most ``self.max_batch`` rows, concatenated.

        Args:
            x: ``[B, ...]`` with ``B >= 1``.

        Returns:
            ``torch.cat`` of the chunks' outputs along dim 0: ``[B, ...]``, row i answering input row i.

        Effects:
            A chunk that raises ``torch.OutOfMemoryError``: ``self.oom_events += 1``,
            ``self.max_batch`` becomes half the size of the chunk that failed (rounded down), the memory
            is freed (``free_cuda_memory()``, outside the ``except`` block), and the same rows
            are retried in smaller chunks. Chunks already answered are kept, never recomputed.

        Raises:
            ValueError: ``x`` is not a tensor with a batch dimension of at least one row.
            torch.OutOfMemoryError: even a chunk of one row ran out of memory (a clear message, chained
                to the original error); ``max_batch`` stays 1 and the runner still serves later calls.
            Any other exception of ``model_fn``: propagated unchanged (the same object), and neither
                ``max_batch`` nor ``oom_events`` changes.

        Tolerance the grader applies (p3.gpu.memory_budget): on a grader ``model_fn`` that raises
        ``torch.OutOfMemoryError`` for chunks above a hidden limit L (starting from ``max_batch=64``),
        every row is answered right and in order, ``oom_events`` equals the errors the grader raised,
        ``max_batch`` ends between L / 2 and L after a few halvings (not one row at a time), the next
        call is answered without a new error, another exception type reaches the caller unchanged, and
        a model that fails even on one row gets an exception within 10 s, not an endless loop.

        Guide: GPU_OPTIMIZATION_GUIDE.md#task-37-memory-under-a-budget
        """
        # Step 1: refuse anything but a tensor with a batch dimension of >= 1 rows (ValueError, say what came).
        # Step 2: start = 0; while start < B: size = min(self.max_batch, B - start); try
        #   model_fn(x[start:start + size]) and keep its output; on success start += size.
        # Step 3: on torch.OutOfMemoryError ONLY (nothing else is caught: other errors reach the caller unchanged):
        #   note it in the except block, then after it: self.oom_events += 1; if size was already 1, raise
        #   torch.OutOfMemoryError("...even 1 row...") from the original; else self.max_batch = size // 2,
        #   free_cuda_memory(), and loop again (same start: the failed rows are retried in smaller chunks).
        # Step 4: return torch.cat(outputs) (dim 0, in order).
        raise NotImplementedError("Task 3.7: see GPU_OPTIMIZATION_GUIDE.md#task-37-memory-under-a-budget")


# ---------------------------------------------------------------------------------------------------
# ## Task 3.7 (5/5): serving with the least memory, at full speed
# ---------------------------------------------------------------------------------------------------
def lean_forward(model: nn.Module, *, device: str = "cpu") -> ModelFn:
    """A function serving ``model`` with the least memory a forward needs, at full speed.

    Args:
        model: an ``nn.Module`` in eval mode, already on ``device``, with float32 weights. Leave it as it
            is (convert a copy if you need another layout or precision).
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.

    Returns:
        ``serve(x) -> y``: ``x`` a float32 batch ``[B, ...]`` (on ``device`` or the CPU), ``y`` the model's
        output as float32 on ``device``, not tracked by autograd (``y.requires_grad`` is False).

    How: a plain ``model(x)`` records the autograd graph and keeps every layer's input alive for a
    backward pass that never comes. Under ``torch.inference_mode()`` each activation is freed as soon as
    the next layer has read it. On a GPU, half precision (a ``.half()``, channels_last copy of the model)
    halves every activation too. Run on the calling thread, one call per batch (tiny chunks cost speed).

    Tolerance the grader applies (p3.gpu.memory_lean): the grader measures the peak of your ``serve``
    and of a naive server (``model(x)`` with autograd on, float32) on the same batch with its own probe;
    graded: 100 x yours / naive (pass <= 50 %, full <= 35 % on a CPU). Gates: every output within
    1e-4 of float32 eager on a CPU (on a GPU, |yours - fp32| <= 0.02 * (1 + |fp32|) element-wise, room for
    half precision), the forward seen on the calling thread, and your throughput at least 0.9x the
    naive server's (paired timing in the same run).

    Guide: GPU_OPTIMIZATION_GUIDE.md#task-37-memory-under-a-budget
    """
    # Step 1 (CPU): return a function serve(x) that runs `return model(x.to(device))` inside torch.inference_mode():
    #   no autograd graph, so each activation is freed as soon as the next layer has read it.
    # Step 2 (CUDA): once, lean = copy.deepcopy(model).to(device).half().to(memory_format=torch.channels_last);
    #   serve(x): under torch.inference_mode(), x = x.to(device, dtype=torch.half), channels_last if 4-D,
    #   return lean(x).float().
    # Step 3: run everything on the calling thread, in one call per batch (no chunking: it costs speed).
    raise NotImplementedError("Task 3.7: see GPU_OPTIMIZATION_GUIDE.md#task-37-memory-under-a-budget")
