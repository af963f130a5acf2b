"""Every part's notebook runs top to bottom in its quick configuration (the reference, here), with one
runner and what each notebook must show declared below.

Markers (the selection rule is in ``tests/conftest.py``): each notebook test carries ``notebook``, its
notebook's own marker (``phase3_batching_notebook``) and the task markers of the tasks it needs: the
run needs every task of its part (``NEEDS``), the check for committed outputs none. A notebook test is
never selected by one task's marker alone: ``-m phase3_task1`` leaves out the phase 3 notebook, which
cannot pass before Task 3.4; ``-m phase3_batching_notebook``, or a ``-m`` naming all four tasks,
selects it.
"""
from __future__ import annotations

import json
import os
import re
import sys

import pytest

from graders.course import REPO_ROOT, Part, Task

from conftest import named_in, notebook_marker, partly_selected   # tests/conftest.py: the selection rule
from .cases import PARTS, has_reference

#: notebook -> (timeout per cell in s, texts its outputs must contain, texts they must not, plots at least)
EXPECT = {
    "notebooks/phase1_basics.ipynb": (120, [], [], 0),
    "notebooks/phase2_quantization.ipynb": (180, ["Pareto front:", "onnx_int8_per_channel_minmax"], [], 5),
    "notebooks/phase2_compilation.ipynb": (240, ["top-1 agreement 100.00%", "graphs compiled by 4 new batch sizes: 0"],
                                           [], 4),
    "notebooks/phase2_compression.ipynb": (240, ["structured pruning: ok", "2:4 pattern: ok", "Pareto front:",
                                                 "distillation:", "runtimes: ok", "OpenVINO INT8 is"], ["WRONG"], 6),
    "notebooks/phase3_batching.ipynb": (180, ["ok)", "refused:", "BatcherClosed"], ["WRONG"], 3),
    "notebooks/phase3_gpu.ipynb": (180, ["naive loop: ok", "held-out batch", "answered ok", "answers ok"], ["WRONG"], 3),
    "notebooks/phase4_pipeline.ipynb": (180, ["accounted for, in order: ok", "as one frame at a time: ok", "events: ok",
                                              "capacity:", "went on to its end: ok"], ["WRONG"], 4),
    "notebooks/phase4_edge.ipynb": (240, ["export: ok", "adaptive: ok", "Pareto front:"], ["WRONG"], 2),
    "notebooks/phase4_server.ipynb": (240, ["repository: ok", "answers: ok", "protocol: ok", "parity: ok",
                                            "availability: ok", "worker replaced: ok", "drained: ok",
                                            "metrics: ok", "load test: ok", "servers stopped"], ["WRONG"], 1),
}
WITH_NOTEBOOK = [p for p in PARTS if p.notebook]
#: Tasks a notebook uses without naming one of their exercises in its code (-> why).
INDIRECT = {"notebooks/phase2_quantization.ipynb": {5: "run_tradeoff_study builds bf16_cpu with to_half_precision"}}


def NEEDS(part: Part) -> tuple[Task, ...]:
    """The tasks a part's notebook needs to run: every task of the part (each walks through all of them)."""
    return part.tasks


def _case(part: Part, tasks: tuple[Task, ...] = (), slow: bool = False):
    marks = [pytest.mark.notebook, getattr(pytest.mark, notebook_marker(part)),
             *(getattr(pytest.mark, t.marker) for t in tasks), *([pytest.mark.slow] if slow else [])]
    return pytest.param(part, marks=marks, id=part.key)


def _code(part: Part) -> str:
    nb = json.loads((REPO_ROOT / part.notebook).read_text(encoding="utf-8"))
    return "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")


def test_every_notebook_has_expectations():
    assert sorted(EXPECT) == sorted(p.notebook for p in WITH_NOTEBOOK)


@pytest.mark.parametrize("part", [pytest.param(p, id=p.key) for p in WITH_NOTEBOOK])
def test_every_task_a_notebook_test_carries_is_used_by_the_notebook(part):
    """The task markers of the run are the tasks its notebook calls (an exercise, or its class, named in
    its code), or uses through a helper (``INDIRECT``)."""
    words = set(re.findall(r"\w+", _code(part)))
    unused = [t.label for t in NEEDS(part) if t.number not in INDIRECT.get(part.notebook, {})
              and not any(set(e.split(".")) & words for e in t.exercises)]
    assert unused == [], f"{part.notebook} carries the markers of tasks it does not use: {unused}"


@pytest.mark.parametrize("expr, selected", [
    ("phase3_task1", False), ("phase3_task1 and not slow", False), ("phase3_task1 or phase3_task2", False),
    ("phase3_task1 or phase3_task2 or phase3_task3 or phase3_task4", True), ("phase3_batching_notebook", True),
    ("phase3_task1 or phase3_batching_notebook", True), ("slow", True), ("phase1_task1", True),
])
def test_one_task_marker_never_selects_a_notebook(expr, selected):
    """The rule of tests/conftest.py on the phase 3 notebook's run (True: left to pytest's own ``-m``
    evaluation, which then selects by the markers as usual)."""
    part = next(p for p in WITH_NOTEBOOK if p.key == "3.batching")

    class Item:                                   # what partly_selected reads of a collected test
        def __init__(self, param):
            self.marks = [m.mark for m in param.marks]

        def get_closest_marker(self, name):
            return next((m for m in self.marks if m.name == name), None)

        def iter_markers(self):
            return iter(self.marks)

    item = Item(_case(part, NEEDS(part), slow=True))
    assert partly_selected(item, named_in(expr)) is not selected


@pytest.mark.parametrize("part", [_case(p) for p in WITH_NOTEBOOK])
def test_notebook_has_no_committed_outputs(part):
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(REPO_ROOT / part.notebook, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


@pytest.mark.parametrize("part", [_case(p, NEEDS(p), slow=True) for p in WITH_NOTEBOOK])
def test_notebook_runs_in_quick_mode(part, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    timeout, must, must_not, plots = EXPECT[part.notebook]
    impl = os.environ.get("INFERENCE_LAB_IMPL") or ("reference" if has_reference(part) else "starter")
    monkeypatch.setenv("INFERENCE_LAB_IMPL", impl)
    monkeypatch.setenv("INFERENCE_LAB_QUICK", "1")
    monkeypatch.delenv("MPLBACKEND", raising=False)      # the kernel then shows figures inline
    path = REPO_ROOT / part.notebook
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, kernel_name="python3", timeout=timeout,
                                     resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    outputs = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]
    errors = [out for out in outputs if out.get("output_type") == "error"]
    assert not errors, errors[0].get("evalue") if errors else ""
    text = "".join(out.get("text", "") for out in outputs)
    # jupyter_client starts the "python3" kernel with this very interpreter (the venv's python).
    assert f"python: {sys.executable}" in text
    for needle in must:
        assert needle in text, f"{part.notebook}: no {needle!r} in its outputs"
    for needle in must_not:
        assert needle not in text, f"{part.notebook}: {needle!r} in its outputs"
    assert len([out for out in outputs if "image/png" in out.get("data", {})]) >= plots
