"""Parametrization of the course suite, read from the manifest: every part, every task, every exercise.

Each case carries the markers of the tasks it concerns, so ``pytest -m phase2_task4`` runs the course
checks of Task 2.4 beside its unit tests. A planned part (no tasks yet) is still a case: the structure
checks apply to its skeleton.
"""
from __future__ import annotations

import importlib
import inspect
from types import ModuleType
from typing import Any

import pytest

from graders.course import REPO_ROOT, Part, Task, phases

__all__ = ["PARTS", "TASKS", "part_cases", "task_cases", "exercise_cases", "has_reference", "impl_module",
           "resolve"]

PARTS: list[Part] = [p for ph in phases() for p in ph.parts]
TASKS: list[Task] = [t for p in PARTS for t in p.tasks]


def _marks(part: Part) -> list[Any]:
    return [getattr(pytest.mark, t.marker) for t in part.tasks]


def part_cases(parts: list[Part] | None = None) -> list[Any]:
    return [pytest.param(p, marks=_marks(p), id=p.key) for p in (PARTS if parts is None else parts)]


def task_cases() -> list[Any]:
    return [pytest.param(t, marks=getattr(pytest.mark, t.marker), id=t.label) for t in TASKS]


def exercise_cases() -> list[Any]:
    return [pytest.param(t, name, marks=getattr(pytest.mark, t.marker), id=f"{t.label}:{name}")
            for t in TASKS for name in t.exercises]


def has_reference(part: Part) -> bool:
    return (REPO_ROOT / part.folder / "reference").is_dir()


def impl_module(part: Part, impl: str) -> ModuleType:
    return importlib.import_module(part.impl_module(impl))


def resolve(module: ModuleType, dotted: str) -> Any:
    """``"DynamicBatcher.submit"`` -> the function object (not bound), looked up from ``module``."""
    obj: Any = module
    for name in dotted.split("."):
        obj = inspect.getattr_static(obj, name) if inspect.isclass(obj) else getattr(obj, name)
    return getattr(obj, "__func__", obj)
