"""The Phase 3 notebook runs top to bottom in its quick configuration (the reference, here)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from .impl import IMPL

pytestmark = [pytest.mark.slow, pytest.mark.phase3_task1, pytest.mark.phase3_task2, pytest.mark.phase3_task3,
              pytest.mark.phase3_task4]

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "phase3_batching.ipynb"


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
    monkeypatch.delenv("MPLBACKEND", raising=False)      # the kernel then shows figures inline
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, kernel_name="python3", timeout=180,
                                     resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute()
    outputs = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not [out for out in outputs if out.get("output_type") == "error"]
    text = "".join(out.get("text", "") for out in outputs)
    assert f"python: {sys.executable}" in text
    assert "ok)" in text and "WRONG" not in text                # batched answers equal unbatched ones
    assert "refused:" in text and "BatcherClosed" in text       # Task 3.2's cell showed its errors
    images = [out for out in outputs if "image/png" in out.get("data", {})]
    assert len(images) >= 3                                     # batch-size, delay and pool plots
