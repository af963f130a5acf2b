"""Which Phase 2 compilation implementation these unit tests exercise, as ``p2c``.

In the course repository that is the hidden reference (``phase2_optimization.reference.compilation``):
CI proves it correct. In the learner copy, which has no reference, it is the learner's
``phase2_optimization.starter.compilation``, so ``pytest -m phase2_taskN tests/phase2_compile`` checks
the task being worked on. The environment variable ``INFERENCE_LAB_IMPL=starter|reference`` overrides
the choice.
"""
from __future__ import annotations

import importlib
import os
from pathlib import Path

import pytest

__all__ = ["HAS_REFERENCE", "IMPL", "needs_reference", "needs_trt", "p2c"]

HAS_REFERENCE = (Path(__file__).resolve().parents[2] / "phase2_optimization" / "reference").is_dir()
IMPL = os.environ.get("INFERENCE_LAB_IMPL") or ("reference" if HAS_REFERENCE else "starter")
p2c = importlib.import_module(f"phase2_optimization.{IMPL}.compilation")

#: For tests that compare with, or run, the reference itself.
needs_reference = pytest.mark.skipif(not HAS_REFERENCE, reason="no reference solution in this copy (learner release)")


_TRT_OK, _TRT_REASON = p2c.tensorrt_available()
#: TensorRT tests (with ``@pytest.mark.gpu``): an NVIDIA GPU and the tensorrt package (the gpu extra).
needs_trt = pytest.mark.skipif(not _TRT_OK, reason=_TRT_REASON)
