# REFERENCE SOLUTION: excluded from the learner release (make release).
"""Phase 3 reference solution: the same public API as ``phase3_advanced.starter``, fully implemented.

Graders never import this package; CI and instructors use it (``--impl reference``) to prove every
threshold in EXPECTED_OUTCOMES.md is reachable.
"""
from .batcher import DynamicBatcher, check_request
from .loadgen import run_closed_loop, run_poisson
from .pool import ModelPool
from .types import (MIN_SAMPLES, BatcherClosed, BatcherConfig, BatcherError, BatcherStats, InvalidRequest,
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
