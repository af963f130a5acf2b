"""The Phase 1 notebook runs top to bottom in its quick configuration (the reference, here)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from .impl import IMPL

pytestmark = [pytest.mark.slow, pytest.mark.phase1_task7]

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "phase1_basics.ipynb"


def test_notebook_has_no_committed_outputs():
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


def test_notebook_runs_in_quick_mode(monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    from jupyter_client.kernelspec import NATIVE_KERNEL_NAME

    assert NATIVE_KERNEL_NAME == "python3"   # ipykernel's native kernel runs on this interpreter
    monkeypatch.setenv("INFERENCE_LAB_IMPL", IMPL)
    monkeypatch.setenv("INFERENCE_LAB_QUICK", "1")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, kernel_name="python3", timeout=120,
                                     resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute()
    errors = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs
              if out.get("output_type") == "error"]
    assert not errors
    # jupyter_client starts the "python3" kernel with this very interpreter (the venv's python).
    setup_output = "".join(out.get("text", "") for out in nb.cells[1].outputs)
    assert f"python: {sys.executable}" in setup_output
