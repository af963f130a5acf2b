"""Which Phase 3 implementation these unit tests exercise, as ``p3``.

In the course repository that is the hidden reference (``phase3_advanced.reference``): CI proves it
correct. In the learner copy, which has no reference, it is the learner's ``phase3_advanced.starter``,
so ``pytest -m phase3_taskN tests/phase3`` checks the task being worked on. The environment variable
``INFERENCE_LAB_IMPL=starter|reference`` overrides the choice.
"""
from __future__ import annotations

import importlib
import os
from pathlib import Path

import pytest

__all__ = ["HAS_REFERENCE", "IMPL", "needs_reference", "p3"]

HAS_REFERENCE = (Path(__file__).resolve().parents[2] / "phase3_advanced" / "reference").is_dir()
IMPL = os.environ.get("INFERENCE_LAB_IMPL") or ("reference" if HAS_REFERENCE else "starter")
p3 = importlib.import_module(f"phase3_advanced.{IMPL}")

#: For tests that compare with, or run, the reference itself.
needs_reference = pytest.mark.skipif(not HAS_REFERENCE, reason="no reference solution in this copy (learner release)")
