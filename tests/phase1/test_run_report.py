"""The report CLI chains all seven tasks; the untouched starter names the next task."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from phase1_basics.run_report import RunConfig, run

from .impl import needs_reference, p1

pytestmark = pytest.mark.phase1_task7

REPO = Path(__file__).resolve().parents[2]
TINY = RunConfig(image_size=32, warmup=1, iterations=5, batch_sizes=(1, 2), throughput_iterations=2,
                 memory_batch=2, profile_iterations=1, device_iterations=3)


def test_run_chains_all_seven_tasks(tmp_path):
    report = run(p1, "resnet18", tmp_path, TINY)
    assert report == tmp_path / "report.md"
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["model"] == "resnet18"
    assert data["latency"]["n_samples"] == 5
    assert [p["batch_size"] for p in data["throughput"]] == [1, 2]
    assert [d["device"] for d in data["devices"]] == ["cpu", "cuda"]
    assert (tmp_path / "throughput.png").exists() and (tmp_path / "latency_histogram.png").exists()


@needs_reference   # in the learner copy the starter is no longer untouched
def test_untouched_starter_says_which_task_is_next(tmp_path):
    done = subprocess.run([sys.executable, "-m", "phase1_basics.run_report", "--impl", "starter",
                           "--out", str(tmp_path), "--quick"], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "Task 1.1" in done.stderr and "task-11-load-a-model-in-any-format" in done.stderr
    assert "make grade PHASE=1 TASK=1" in done.stderr
