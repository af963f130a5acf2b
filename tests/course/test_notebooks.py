"""Every part's notebook runs top to bottom in its quick configuration (the reference, here), with one
runner and what each notebook must show declared below."""
from __future__ import annotations

import os
import sys

import pytest

from graders.course import REPO_ROOT

from .cases import PARTS, has_reference

pytestmark = pytest.mark.slow

#: notebook -> (timeout per cell in s, texts its outputs must contain, texts they must not, plots at least)
EXPECT = {
    "notebooks/phase1_basics.ipynb": (120, [], [], 0),
    "notebooks/phase2_quantization.ipynb": (180, ["Pareto front:", "onnx_int8_per_channel_minmax"], [], 5),
    "notebooks/phase2_compilation.ipynb": (240, ["top-1 agreement 100.00%", "graphs compiled by 4 new batch sizes: 0"],
                                           [], 4),
    "notebooks/phase3_batching.ipynb": (180, ["ok)", "refused:", "BatcherClosed"], ["WRONG"], 3),
}
WITH_NOTEBOOK = [p for p in PARTS if p.notebook]


def _case(part):
    # A notebook walks through every task of its part: it runs only when all of them are selected,
    # never under a single task's marker.
    return pytest.param(part, id=part.key)


def test_every_notebook_has_expectations():
    assert sorted(EXPECT) == sorted(p.notebook for p in WITH_NOTEBOOK)


@pytest.mark.parametrize("part", [_case(p) for p in WITH_NOTEBOOK])
def test_notebook_has_no_committed_outputs(part):
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(REPO_ROOT / part.notebook, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


@pytest.mark.parametrize("part", [_case(p) for p in WITH_NOTEBOOK])
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
