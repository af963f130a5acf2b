"""Which Phase 2 quantization implementation these unit tests exercise, as ``q``.

In the course repository that is the hidden reference (``phase2_optimization.reference.quantization``):
CI proves it correct. In the learner copy, which has no reference, it is the learner's
``phase2_optimization.starter.quantization``, so ``pytest -m phase2_task3 tests/phase2_quant`` checks
the task being worked on. The environment variable ``INFERENCE_LAB_IMPL=starter|reference``
overrides the choice.
"""
from __future__ import annotations

import importlib
import os
from pathlib import Path

import pytest

__all__ = ["HAS_REFERENCE", "IMPL", "needs_reference", "q"]

HAS_REFERENCE = (Path(__file__).resolve().parents[2] / "phase2_optimization" / "reference").is_dir()
IMPL = os.environ.get("INFERENCE_LAB_IMPL") or ("reference" if HAS_REFERENCE else "starter")
q = importlib.import_module(f"phase2_optimization.{IMPL}.quantization")

#: For tests that compare with, or run, the reference itself.
needs_reference = pytest.mark.skipif(not HAS_REFERENCE, reason="no reference solution in this copy (learner release)")
