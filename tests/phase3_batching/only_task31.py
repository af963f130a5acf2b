"""A pytest plugin for ``test_task_order.py``: the learner copy on the day Task 3.1 is done, and nothing else.

Loaded with ``-p phase3_batching.only_task31`` (``tests/`` on ``PYTHONPATH``) in a run whose
``INFERENCE_LAB_IMPL=starter``, it swaps the starter's ``DynamicBatcher`` for ``Task31Batcher``: the
starter's class (so ``close`` and ``check_request`` are still the stubs that raise
``NotImplementedError("Task 3.2: ...")``) with the reference's ``submit`` (less its Task 3.2 step 1,
``check_request``), ``_next_batch`` and ``_run_batch``. It needs the reference, so it only runs in the
instructors' copy. Not a test module: pytest collects nothing from it.
"""
from __future__ import annotations

import types

import pytest

from phase3_advanced.batching import starter
from phase3_advanced.batching.reference import batcher as _ref

__all__ = ["Task31Batcher"]


def _submit_without_check_request():
    """The reference's ``submit`` with step 1 skipped, as a Task 3.1 learner writes it (``check_request``
    is Task 3.2): the same code, run with ``check_request`` bound to the identity."""
    fn = _ref.DynamicBatcher.submit
    scope = dict(vars(_ref), check_request=lambda x, **_: x)
    return types.FunctionType(fn.__code__, scope, fn.__name__, fn.__defaults__, fn.__closure__)


class Task31Batcher(starter.DynamicBatcher):
    """The starter's batcher with only Task 3.1 written."""

    submit = _submit_without_check_request()
    _next_batch = _ref.DynamicBatcher._next_batch
    _run_batch = _ref.DynamicBatcher._run_batch


@pytest.fixture(autouse=True)
def _only_task31(monkeypatch):
    monkeypatch.setattr(starter, "DynamicBatcher", Task31Batcher)
