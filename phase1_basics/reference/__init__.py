# REFERENCE SOLUTION: excluded from the learner release (make release).
"""Phase 1 reference solution: the same public API as ``phase1_basics.starter``, fully implemented.

Graders never import this package; CI and instructors use it (``--impl reference``) to prove every
threshold in EXPECTED_OUTCOMES.md is reachable.
"""
from .devices import DEVICES, compare_devices
from .latency import device_sync, measure_latency, summarize_latencies
from .loading import KINDS, Predictor, load_predictor
from .memory import parameter_bytes, peak_memory_during
from .profiling import top_operators
from .report import environment_info, write_report
from .throughput import measure_throughput
from .types import (MIN_SAMPLES, DeviceResult, LatencyStats, MemoryReport, OpStat, ReportPaths,
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
