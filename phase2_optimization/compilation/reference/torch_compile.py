# REFERENCE SOLUTION: excluded from the learner release (make release).
"""Task 2.10: torch.compile with the inductor backend: warm-up, dynamic shapes, no recompiles.

Guide: COMPILATION_GUIDE.md#task-210-torchcompile
"""
from __future__ import annotations

import time
from typing import Callable, Iterable

import torch

from ..types import CompileConfig, CompileResult

__all__ = ["graphs_compiled", "compile_model", "compile_and_warm_up"]


# ---------------------------------------------------------------------------------------------------
# Helper (written in full): Dynamo's own count of the graphs it compiled in this process
# ---------------------------------------------------------------------------------------------------
def graphs_compiled() -> int:
    """Graphs Dynamo has compiled in this process so far (every recompilation adds one).

    Reads ``torch._dynamo.utils.counters["stats"]["unique_graphs"]``; ``torch._dynamo.reset()``
    clears the compiled code but not this count, so take differences.
    """
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


# ---------------------------------------------------------------------------------------------------
# ## Task 2.10: torch.compile
# ---------------------------------------------------------------------------------------------------
def compile_model(model: torch.nn.Module, config: CompileConfig | None = None) -> torch.nn.Module:
    """Compile a model with ``torch.compile`` as ``config`` says (nothing is compiled until its first call).

    Args:
        model: a PyTorch module; it is put in eval mode first.
        config: ``CompileConfig`` (backend, mode, dynamic, fullgraph); None = defaults (inductor,
            mode "default", ``dynamic=True``).

    Returns:
        The compiled module (``torch._dynamo.eval_frame.OptimizedModule``); call it under
        ``torch.inference_mode()``.

    Raises:
        ValueError: ``config.backend`` is not in ``torch._dynamo.list_backends()`` (the message lists them).

    Tolerance the grader applies: p2.compilation.compile_correct, through ``compile_and_warm_up``: max
    |compiled - eager| <= 1e-4 (full marks 1e-5) at every batch size the grader tries.

    Guide: COMPILATION_GUIDE.md#task-210-torchcompile
    """
    # BEGIN SOLUTION
    config = config or CompileConfig()
    backends = set(torch._dynamo.list_backends()) | {"inductor", "eager", "aot_eager"}
    if config.backend not in backends:
        raise ValueError(f"unknown torch.compile backend {config.backend!r}; available: {sorted(backends)}")
    return torch.compile(model.eval(), backend=config.backend, mode=config.mode, dynamic=config.dynamic,
                         fullgraph=config.fullgraph)
    # END SOLUTION
    """ # BEGIN PROMPT
    # Step 1: config = config or CompileConfig(); the backend must be in torch._dynamo.list_backends() (or be
    #   "inductor", "eager", "aot_eager"), else ValueError listing them.
    # Step 2: return torch.compile(model.eval(), backend=config.backend, mode=config.mode,
    #   dynamic=config.dynamic, fullgraph=config.fullgraph).
    raise NotImplementedError("Task 2.10: see COMPILATION_GUIDE.md#task-210-torchcompile")
    """  # END PROMPT


def compile_and_warm_up(model: torch.nn.Module, make_input: Callable[[int], torch.Tensor],
                        batch_sizes: Iterable[int], *, config: CompileConfig | None = None,
                        calls_per_size: int = 3) -> CompileResult:
    """Compile a model and warm it up on every batch size it will serve, so no request pays for a compile.

    Args:
        model: a PyTorch module, already on its device.
        make_input: ``make_input(b)`` returns an input batch ``[b, ...]`` on the model's device.
        batch_sizes: the batch sizes to warm up, in this order (put 1 first: a dimension of size 1 is
            always specialised, so it gets its own graph; sizes from 2 upwards can share one dynamic
            graph, unless a guard splits them).
        config: ``CompileConfig``; None = defaults (``dynamic=True``).
        calls_per_size: calls per batch size (>= 1; the default 3 lets a "reduce-overhead" model
            warm up, record its CUDA graph and replay it once).

    Returns:
        ``CompileResult`` with the compiled module, ``compile_s`` (every warm-up call's seconds
        summed, compilation included; each call timed with ``time.perf_counter`` and, on a GPU,
        ``torch.cuda.synchronize()`` inside the timed region), ``warmup_s`` per batch size, and
        ``graphs`` = graphs Dynamo compiled during the warm-up (``graphs_compiled()`` after minus
        before). Every call runs under ``torch.inference_mode()``, as the grader's calls do (a call
        under another grad mode would fail a guard and recompile).

    Raises:
        ValueError: ``calls_per_size < 1``, or an unknown backend (from ``compile_model``), before
            anything is compiled.

    Tolerance the grader applies: p2.compilation.compile_correct (max |compiled - eager| <= 1e-4, full 1e-5);
    p2.compilation.compile_recompiles (warm up on 1, 2, 4, 8, 16, 32, then the grader calls 8 other sizes from
    1..32: graphs compiled during its calls <= 1 passes, 0 full marks; a warm-up that compiled more
    than 4 graphs, one per shape, fails); p2.compilation.compile_report (your ``compile_s`` within 15 % of the
    grader's clock around your whole call, full marks 5 %; ``graphs`` exact).

    Guide: COMPILATION_GUIDE.md#task-210-torchcompile
    """
    # BEGIN SOLUTION
    if calls_per_size < 1:
        raise ValueError(f"calls_per_size must be >= 1, got {calls_per_size}")
    compiled = compile_model(model, config)
    before = graphs_compiled()
    warmup_s: dict[int, float] = {}
    for bs in batch_sizes:
        x = make_input(int(bs))
        spent = 0.0
        for _ in range(calls_per_size):
            t0 = time.perf_counter()
            with torch.inference_mode():
                compiled(x)
            if x.is_cuda:
                torch.cuda.synchronize(x.device)        # the input's own GPU, for "cuda:N" too
            spent += time.perf_counter() - t0
        warmup_s[int(bs)] = warmup_s.get(int(bs), 0.0) + spent
    return CompileResult(compiled=compiled, compile_s=sum(warmup_s.values()), warmup_s=warmup_s,
                         graphs=graphs_compiled() - before)
    # END SOLUTION
    """ # BEGIN PROMPT
    # Step 1: calls_per_size < 1 -> ValueError; compiled = compile_model(model, config); before = graphs_compiled().
    # Step 2: for each batch size: x = make_input(bs) (before the clock starts); sync = torch.cuda.synchronize(x.device)
    #   when x.is_cuda (a no-op otherwise); then calls_per_size times: t0 = time.perf_counter(); with torch.inference_mode():
    #   compiled(x); sync(); add time.perf_counter() - t0 to warmup_s[bs].
    # Step 3: return CompileResult(compiled, compile_s=sum(warmup_s.values()), warmup_s=warmup_s,
    #   graphs=graphs_compiled() - before).
    raise NotImplementedError("Task 2.10: see COMPILATION_GUIDE.md#task-210-torchcompile")
    """  # END PROMPT
