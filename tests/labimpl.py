"""Which implementation of a part the unit tests exercise: ``implementation(2, "quantization")``.

In the course repository that is the hidden reference (``phase2_optimization.quantization.reference``):
CI proves it correct. In the learner copy, which has no reference, it is the learner's starter, so
``make test-task TASK=4 PHASE=2`` (``pytest -m phase2_task4 tests/phase2_quantization``) checks the task being
worked on. The environment variable ``INFERENCE_LAB_IMPL=starter|reference`` overrides the choice.
"""
from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from types import ModuleType

import pytest

from graders.course import REPO_ROOT, phase

__all__ = ["Implementation", "implementation"]


@dataclass(frozen=True)
class Implementation:
    module: ModuleType        # the package under test (starter or reference)
    impl: str                 # "starter" | "reference"
    has_reference: bool       # False in the learner copy
    needs_reference: pytest.MarkDecorator   # for tests that compare with, or run, the reference itself


def implementation(phase_number: int, part: str | None = None) -> Implementation:
    p = phase(phase_number).part(part)
    has_reference = (REPO_ROOT / p.folder / "reference").is_dir()
    impl = os.environ.get("INFERENCE_LAB_IMPL") or ("reference" if has_reference else "starter")
    return Implementation(
        module=importlib.import_module(p.impl_module(impl)), impl=impl, has_reference=has_reference,
        needs_reference=pytest.mark.skipif(not has_reference,
                                           reason="no reference solution in this copy (learner release)"))
