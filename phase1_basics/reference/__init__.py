# REFERENCE SOLUTION: excluded from the learner release (make release).
"""Phase 1 starter: the public API the Phase 1 graders call. Fill in every ``NotImplementedError``.

Work through the tasks in order (each builds on the last), reading the matching section of
``phase1_basics/IMPLEMENTATION_GUIDE.md`` first:

    Task 1.1  loading.py     load_predictor         load a model in any format
    Task 1.2  latency.py     summarize_latencies, measure_latency
    Task 1.3  throughput.py  measure_throughput
    Task 1.4  memory.py      parameter_bytes, peak_memory_during
    Task 1.5  profiling.py   top_operators
    Task 1.6  devices.py     compare_devices
    Task 1.7  report.py      write_report

Check one task with ``make grade PHASE=1 TASK=N``. ``types.py`` (beside this folder) and the helpers (``Predictor``,
``device_sync``, ``environment_info``) are written in full: use them, keep their names.
"""
from .devices import DEVICES, compare_devices
from .latency import device_sync, measure_latency, summarize_latencies
from .loading import KINDS, Predictor, load_predictor
from .memory import parameter_bytes, peak_memory_during
from .profiling import top_operators
from .report import environment_info, write_report
from .throughput import measure_throughput
from ..types import (MIN_SAMPLES, DeviceResult, LatencyStats, MemoryReport, OpStat, ReportPaths,
                    ThroughputPoint)

__all__ = [
    # types (helpers)
    "MIN_SAMPLES", "LatencyStats", "ThroughputPoint", "MemoryReport", "OpStat", "DeviceResult", "ReportPaths",
    # Task 1.1
    "KINDS", "Predictor", "load_predictor",
    # Task 1.2
    "device_sync", "summarize_latencies", "measure_latency",
    # Task 1.3
    "measure_throughput",
    # Task 1.4
    "parameter_bytes", "peak_memory_during",
    # Task 1.5
    "top_operators",
    # Task 1.6
    "DEVICES", "compare_devices",
    # Task 1.7
    "environment_info", "write_report",
]
