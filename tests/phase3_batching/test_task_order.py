"""Each task's unit tests pass as soon as that task is done: the Task 3.1 tests need nothing of Task 3.2.

A learner who has written ``submit``, ``_next_batch`` and ``_run_batch`` runs
``make test-task PHASE=3 TASK=1`` (``pytest -m "phase3_task1 and not slow" tests/phase3_batching``) and
must see it green, although ``close`` and ``check_request`` still raise ``NotImplementedError``. This
runs exactly that selection in a subprocess, against the starter with the reference's Task 3.1 grafted
in (``only_task31.py``), so a new Task 3.1 test that uses ``with DynamicBatcher(...)`` (whose
``__exit__`` calls ``close``) fails here, not in a learner's first run. About 5 s, most of it the
subprocess importing torch.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from graders.course import REPO_ROOT

from .impl import needs_reference

TESTS = REPO_ROOT / "tests"


def _only_task31():
    from . import only_task31
    return only_task31


@needs_reference
def test_the_task31_batcher_has_stub_close_and_check_request():
    """The stand-in is what a Task 3.1 learner has: close and check_request raise, submit does not call it."""
    from .conftest import SHAPE, RowModel, started
    import torch
    from phase3_advanced.batching import starter

    cls = _only_task31().Task31Batcher
    b = cls(RowModel(), starter.BatcherConfig(max_batch_size=2, max_queue_delay_ms=1.0), input_shape=SHAPE)
    with pytest.raises(NotImplementedError, match="Task 3.2"):
        b.close()
    with pytest.raises(NotImplementedError, match="Task 3.2"):
        starter.check_request(torch.zeros(*SHAPE), input_shape=SHAPE, dtype=torch.float32)
    with started(b):
        torch.testing.assert_close(b.submit(torch.ones(*SHAPE)).result(timeout=5), RowModel.expected(torch.ones(*SHAPE)))


@needs_reference
def test_the_task31_tests_pass_without_task32():
    env = dict(os.environ, INFERENCE_LAB_IMPL="starter",
               PYTHONPATH=os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")])))
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "phase3_batching.only_task31",
           "-m", "phase3_task1 and not slow", str(TESTS / "phase3_batching")]
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"the Task 3.1 tests fail with only Task 3.1 written:\n{out[-4000:]}"
    passed = re.search(r"(\d+) passed", out)
    assert passed and int(passed.group(1)) >= 9, out[-2000:]
    assert "NotImplementedError" not in out, out[-2000:]
