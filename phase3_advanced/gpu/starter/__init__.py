"""Phase 3 starter (part gpu): GPU optimization and multi-device serving. Fill in every ``NotImplementedError``.

Work through the tasks in order, reading the matching section of
``phase3_advanced/GPU_OPTIMIZATION_GUIDE.md`` first:

    Task 3.5  prefetch.py  Prefetcher._stage, _produce, __next__, close       an overlapped input pipeline
    Task 3.6  graphs.py    GraphedModel.__init__, __call__ (CUDA only)         CUDA graphs for small batches
    Task 3.7  memory.py    measure_peak_bytes, fit_memory_model,              memory under a budget
                           largest_batch_under_budget, OomSafeRunner, lean_forward
    Task 3.8  router.py    DeviceRouter.submit, _pick, _collect, _reroute,    multi-device data-parallel serving
                           close
    Task 3.9  streams.py   run_on_streams (CUDA only)                         concurrent models on CUDA streams

Check one task with ``make grade PHASE=3 PART=gpu TASK=N``. ``types.py`` and ``workers.py``, beside this
folder (``MemoryModel``, ``RouterConfig``, ``RouterStats``, the errors; the worker processes and their
pipes), and the helpers marked "written in full" in each file are complete: use them, keep their names.
On a machine without an NVIDIA GPU, tasks 3.6 and 3.9 are skipped by the grader (with the reason) and
every other task runs on the CPU.
"""
from ..types import (MemoryModel, NoDeviceLeft, RouterClosed, RouterConfig, RouterError, RouterStats,
                     WorkerFailed)
from ..workers import WorkerLost, cpu_devices
from .graphs import GraphedModel
from .memory import OomSafeRunner, fit_memory_model, largest_batch_under_budget, lean_forward, measure_peak_bytes
from .prefetch import PrefetchError, Prefetcher
from .router import DeviceRouter
from .streams import StreamsReport, run_on_streams

__all__ = [
    # types, errors and worker helpers (written in full)
    "MemoryModel", "RouterConfig", "RouterStats", "RouterError", "RouterClosed", "NoDeviceLeft", "WorkerFailed",
    "WorkerLost", "cpu_devices",
    # Task 3.5
    "Prefetcher", "PrefetchError",
    # Task 3.6
    "GraphedModel",
    # Task 3.7
    "measure_peak_bytes", "fit_memory_model", "largest_batch_under_budget", "OomSafeRunner", "lean_forward",
    # Task 3.8
    "DeviceRouter",
    # Task 3.9
    "run_on_streams", "StreamsReport",
]
