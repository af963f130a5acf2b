# REFERENCE SOLUTION: excluded from the learner release (make release).
"""Task 3.9: several different models at once on one GPU, each on its own CUDA stream.

Kernels queued on one stream run one after another; kernels on different streams may run at the same
time, when one model's kernels leave streaming multiprocessors idle (small batches, small layers).
Streams share one device, so nothing orders them but what you say: ``wait_stream`` (and events) make
a stream wait for another's work so far, ``record_stream`` tells the caching allocator that a tensor
is still in use on a stream other than the one that allocated it. CUDA only.

Guide: GPU_OPTIMIZATION_GUIDE.md#task-39-concurrent-models-on-cuda-streams
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

__all__ = ["StreamsReport", "run_on_streams"]


@dataclass
class StreamsReport:
    """What ``run_on_streams`` measured (helper, written in full).

    Attributes:
        outputs: one output per model, in the models' order, each what that model returns for its input
            (float32, on the CPU), from the last concurrent round.
        concurrent_ms: one round of every model, each on its own stream, in milliseconds (the mean over
            ``repeats`` rounds, timed with CUDA events).
        sequential_ms: the same round with every model on one stream, one after another, in milliseconds.
        speedup: ``sequential_ms / concurrent_ms`` (above 1: the streams overlapped).
        streams: how many CUDA streams the concurrent rounds used (one per model).
    """

    outputs: list[torch.Tensor]
    concurrent_ms: float
    sequential_ms: float
    speedup: float
    streams: int

    def summary(self) -> str:
        """One line: ``4 models on 4 streams: 1.20 ms per round vs 1.80 ms one after another (1.50x)``."""
        return (f"{len(self.outputs)} models on {self.streams} streams: {self.concurrent_ms:.2f} ms per round vs "
                f"{self.sequential_ms:.2f} ms one after another ({self.speedup:.2f}x)")


def _check_arguments(models: Sequence[nn.Module], inputs: Sequence[torch.Tensor], device: str | torch.device,
                     repeats: int, warmup: int) -> torch.device:
    """Validate ``run_on_streams``'s arguments; return the CUDA device to run on (helper, written in full).

    Raises:
        ValueError: no models, not one input per model, an input that is not a tensor, ``repeats`` < 1,
            ``warmup`` < 0, a device that is not CUDA, or no CUDA GPU on this machine.
    """
    models, inputs = list(models), list(inputs)
    if not models:
        raise ValueError("run_on_streams needs at least one model")
    if len(models) != len(inputs):
        raise ValueError(f"run_on_streams needs one input per model: got {len(models)} models and {len(inputs)} inputs")
    bad = [i for i, x in enumerate(inputs) if not isinstance(x, torch.Tensor)]
    if bad:
        raise ValueError(f"every input must be a torch.Tensor; inputs {bad} are not")
    if int(repeats) < 1 or int(warmup) < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0, got repeats={repeats}, warmup={warmup}")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"device must name a CUDA device such as 'cuda' or 'cuda:0', got {device!r} ({e})") from None
    if dev.type != "cuda":
        raise ValueError(f"CUDA streams need an NVIDIA GPU: device must be 'cuda' or 'cuda:N', got {str(dev)!r} "
                         f"(on a CPU, run the models in threads instead, as Phase 3's ModelPool does)")
    if not torch.cuda.is_available():
        raise ValueError(f"device {str(dev)!r} was asked for, but this machine has no CUDA GPU "
                         f"(torch.cuda.is_available() is False)")
    if dev.index is None:
        dev = torch.device("cuda", torch.cuda.current_device())
    return dev


# ---------------------------------------------------------------------------------------------------
# ## Task 3.9: concurrent models on CUDA streams
# ---------------------------------------------------------------------------------------------------
def run_on_streams(models: Sequence[nn.Module], inputs: Sequence[torch.Tensor], *, device: str = "cuda",
                   repeats: int = 20, warmup: int = 3) -> StreamsReport:
    """Run every model on its own CUDA stream, time it against the same work on one stream, and report.

    One *round* runs each model once on its input. A concurrent round gives model ``i`` its own
    ``torch.cuda.Stream``; a sequential round runs the models one after another on one stream.

    Args:
        models: the models (``nn.Module``, on ``device``, in eval mode), one or more (the grader gives four
            different ones); each takes one tensor and returns one tensor.
        inputs: one input per model, ``inputs[i]`` a whole batch for ``models[i]`` (any device: moved to
            ``device``).
        device: the CUDA device, ``"cuda"`` or ``"cuda:N"``.
        repeats: timed rounds of each kind (>= 1); the reported times are the mean per round.
        warmup: untimed rounds of each kind first (>= 0): kernel selection, each stream's allocator pool.

    Returns:
        ``StreamsReport(outputs, concurrent_ms, sequential_ms, speedup, streams)``: the outputs of the
        last concurrent round as float32 on the CPU, the milliseconds per round timed with CUDA events
        (``torch.cuda.Event(enable_timing=True)``), ``speedup = sequential_ms / concurrent_ms`` and
        ``streams = len(models)``.

    Raises:
        ValueError: ``device`` is not a CUDA device or there is no GPU (the message says CUDA streams need
            one), ``len(models) != len(inputs)``, no models, ``repeats`` < 1 or ``warmup`` < 0.

    Tolerance the grader applies (p3.gpu.streams): four different models on fresh inputs; each output within
    1e-3 of that model's own output (TF32 off), on every call; the models must be seen running on at least
    four different streams. Your speed-up is reported beside the grader's own measurement (it times one
    sequential round itself, and your whole call), not graded: how much small models gain depends on the
    GPU and on how fast one Python thread queues their kernels.

    Guide: GPU_OPTIMIZATION_GUIDE.md#task-39-concurrent-models-on-cuda-streams
    """
    # BEGIN SOLUTION
    # Step 1: the arguments, the device, and its current ("main") stream, which orders everything else.
    dev = _check_arguments(models, inputs, device, repeats, warmup)
    models, repeats, warmup = list(models), int(repeats), int(warmup)
    with torch.cuda.device(dev), torch.inference_mode():
        main = torch.cuda.current_stream(dev)
        xs = [x.to(dev, non_blocking=True) for x in inputs]   # copies (if any) are queued on main
        streams = [torch.cuda.Stream(device=dev) for _ in models]

        # Step 2: one concurrent round: each model on its own stream, ordered after main and before main.
        def concurrent() -> list[torch.Tensor]:
            outs = []
            for model, x, s in zip(models, xs, streams):
                s.wait_stream(main)            # x (written on main) is ready before s reads it
                with torch.cuda.stream(s):
                    x.record_stream(s)         # x's memory is not handed out again while s may read it
                    outs.append(model(x))
            for s, y in zip(streams, outs):
                main.wait_stream(s)            # whatever main runs next waits for every model
                y.record_stream(main)          # y, allocated on s, is read on main later
            return outs

        # Step 3: one sequential round: the same work, on main only.
        def sequential() -> list[torch.Tensor]:
            return [model(x) for model, x in zip(models, xs)]

        # Step 4: time `repeats` rounds with CUDA events on main (they bracket every stream's work).
        def timed(round_fn) -> tuple[float, list[torch.Tensor]]:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record(main)
            for _ in range(repeats):
                outs = round_fn()
            end.record(main)
            end.synchronize()
            return start.elapsed_time(end) / repeats, outs

        for _ in range(warmup):
            concurrent()
            sequential()
        torch.cuda.synchronize(dev)
        concurrent_ms, outs = timed(concurrent)
        sequential_ms, _ = timed(sequential)
        # Step 5: the last concurrent round's outputs (main waited for them), float32 on the CPU.
        outputs = [y.float().cpu() for y in outs]
    return StreamsReport(outputs=outputs, concurrent_ms=concurrent_ms, sequential_ms=sequential_ms,
                         speedup=sequential_ms / concurrent_ms, streams=len(streams))
    # END SOLUTION
    """ # BEGIN PROMPT
    # Step 1: dev = _check_arguments(models, inputs, device, repeats, warmup) (it raises the ValueErrors).
    #   Do the rest inside `with torch.cuda.device(dev), torch.inference_mode():`.
    #   main = torch.cuda.current_stream(dev); xs = [x.to(dev, non_blocking=True) for x in inputs];
    #   streams = [torch.cuda.Stream(device=dev) for each model].
    # Step 2: a concurrent round: for each (model, x, s): s.wait_stream(main) (x is ready);
    #   `with torch.cuda.stream(s):` x.record_stream(s); y = model(x). Then, for each stream and its y:
    #   main.wait_stream(s) (main waits for every model); y.record_stream(main) (y is read on main later).
    # Step 3: a sequential round: [model(x) for model, x in zip(models, xs)], all on main.
    # Step 4: time each kind: start = torch.cuda.Event(enable_timing=True), end likewise; start.record(main);
    #   `repeats` rounds; end.record(main); end.synchronize(); ms per round = start.elapsed_time(end) / repeats.
    #   Run `warmup` rounds of both kinds first, then torch.cuda.synchronize(dev).
    # Step 5: outputs = [y.float().cpu() for y in the last concurrent round's outputs];
    #   return StreamsReport(outputs, concurrent_ms, sequential_ms, sequential_ms / concurrent_ms, len(streams)).
    raise NotImplementedError("Task 3.9: see GPU_OPTIMIZATION_GUIDE.md#task-39-concurrent-models-on-cuda-streams")
    """  # END PROMPT
