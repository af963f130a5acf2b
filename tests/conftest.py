"""The course's markers, registered from the manifest (``graders/course.toml``): one per task,
``phaseN_taskM``, so ``pytest -m phase2_task4`` selects exactly the checks of Task 2.4.

Notebook tests (marked ``notebook``) also carry the task markers of every task their notebook needs,
and a marker of their own, ``<part>_notebook`` (``phase1_notebook``, ``phase3_batching_notebook``). A
notebook needs several tasks, so a single task's marker must not select it (``-m phase3_task1`` would
otherwise run a notebook that cannot pass before Task 3.4): such a test is deselected when the ``-m``
expression names some of its task markers but not all of them, unless it names the notebook's own
marker. ``-m phase3_batching_notebook``, or ``-m "phase3_task1 or phase3_task2 or phase3_task3 or
phase3_task4"``, selects it; ``-m phase3_task1`` does not. Without ``-m``, pytest's usual rules apply
(``make test`` runs every notebook, ``-m "not slow"`` none).
"""
from __future__ import annotations

import re

from graders.course import markers, phases

TASK_MARKER = re.compile(r"phase\d+_task\d+")


def notebook_marker(part) -> str:
    """A part's notebook marker: ``phase3_batching_notebook`` (``phase1_notebook`` for a single-part phase)."""
    return f"phase{part.phase}" + (f"_{part.name}" if part.name else "") + "_notebook"


def pytest_configure(config):
    for line in markers():
        config.addinivalue_line("markers", line)
    config.addinivalue_line("markers", "notebook: runs a part's notebook; a task marker selects it only together "
                                       "with the markers of every other task it needs (see tests/conftest.py)")
    for ph in phases():
        for part in ph.parts:
            if part.notebook:
                config.addinivalue_line("markers", f"{notebook_marker(part)}: the tests of {part.notebook}")


def named_in(expr: str) -> set[str]:
    """The marker names a ``-m`` expression mentions: ``"phase3_task1 and not slow"`` -> both names."""
    return set(re.findall(r"[A-Za-z_]\w*", expr)) - {"and", "or", "not"}


def partly_selected(item, named: set[str]) -> bool:
    """True for a notebook test that the ``-m`` expression's names select by only some of its tasks."""
    if item.get_closest_marker("notebook") is None:
        return False
    marks = {m.name for m in item.iter_markers()}
    tasks = {m for m in marks if TASK_MARKER.fullmatch(m)}
    own = {m for m in marks if m.endswith("_notebook")}
    return bool(tasks & named) and not tasks <= named and not own & named


def pytest_collection_modifyitems(config, items):
    named = named_in(config.getoption("markexpr") or "")
    if not named:
        return
    drop = [item for item in items if partly_selected(item, named)]
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = [item for item in items if item not in drop]
