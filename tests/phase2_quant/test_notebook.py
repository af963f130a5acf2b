"""The Phase 2 quantization notebook runs top to bottom in its quick configuration (the reference, here)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from .impl import IMPL

pytestmark = [pytest.mark.slow, pytest.mark.phase2_task6]

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "phase2_quantization.ipynb"


def test_notebook_has_no_committed_outputs():
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


def test_notebook_runs_in_quick_mode(monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("INFERENCE_LAB_IMPL", IMPL)
    monkeypatch.setenv("INFERENCE_LAB_QUICK", "1")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, kernel_name="python3", timeout=180,
                                     resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute()
    errors = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs
              if out.get("output_type") == "error"]
    assert not errors
    setup_output = "".join(out.get("text", "") for out in nb.cells[1].outputs)
    assert f"python: {sys.executable}" in setup_output
    study = "".join(out.get("text", "") for cell in nb.cells for out in cell.get("outputs", []))
    assert "Pareto front:" in study and "onnx_int8_per_channel_minmax" in study
    images = [out for cell in nb.cells for out in cell.get("outputs", []) if "image/png" in out.get("data", {})]
    assert len(images) >= 5                     # every plot was drawn
