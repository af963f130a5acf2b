"""Phase 3 starter (part a): dynamic batching and concurrent models. Fill in every ``NotImplementedError``.

Work through the tasks in order, reading the matching section of
``phase3_advanced/DYNAMIC_BATCHING_GUIDE.md`` first:

    Task 3.1  batcher.py   DynamicBatcher.submit, _next_batch, _run_batch     a dynamic batcher
    Task 3.2  batcher.py   check_request, DynamicBatcher.close (+ the overload
                           and model-error paths of submit and _run_batch)   robustness
    Task 3.3  pool.py      ModelPool                                          concurrent models
    Task 3.4  loadgen.py   run_closed_loop, run_poisson                       a load generator

Check one task with ``make grade PHASE=3 TASK=N``. ``types.py``, beside this folder (``BatcherConfig``, ``BatcherStats``,
``ModelSpec``, ``LoadReport``, the error classes) and the helpers in ``batcher.py`` (``_Request``,
``_resolve``, ``_fail``, ``_Counters``, ``DynamicBatcher.__init__``, ``start``, ``stats``,
``_call_model``, ``_worker_loop``) are written in full: use them, keep their names.
"""
from .batcher import DynamicBatcher, check_request
from .loadgen import run_closed_loop, run_poisson
from .pool import ModelPool
from ..types import (MIN_SAMPLES, BatcherClosed, BatcherConfig, BatcherError, BatcherStats, InvalidRequest,
                    LoadReport, ModelError, ModelSpec, Overloaded)

__all__ = [
    # types and errors (helpers)
    "MIN_SAMPLES", "BatcherConfig", "BatcherStats", "ModelSpec", "LoadReport",
    "BatcherError", "InvalidRequest", "Overloaded", "BatcherClosed", "ModelError",
    # Tasks 3.1 and 3.2
    "DynamicBatcher", "check_request",
    # Task 3.3
    "ModelPool",
    # Task 3.4
    "run_closed_loop", "run_poisson",
]
