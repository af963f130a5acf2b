"""The repo's datasets/ folder never hides Hugging Face's ``datasets`` package."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.data

REPO = Path(__file__).resolve().parents[2]


def _run(code: str, extra_path: Path | None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    parts = [str(extra_path)] if extra_path else []
    if env.get("PYTHONPATH"):
        parts.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(parts)
    # cwd = repo root: '' (the repo root) is first on sys.path, the worst case for shadowing
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


def test_datasets_folder_is_not_a_package():
    assert (REPO / "datasets").is_dir()
    assert not (REPO / "datasets" / "__init__.py").exists(), \
        "datasets/__init__.py would make the folder a regular package that shadows HF datasets"


@pytest.mark.parametrize("order", ["datasets_first", "labdata_first"])
def test_installed_datasets_package_wins(tmp_path, order):
    fake = tmp_path / "site" / "datasets"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("MARKER = 'huggingface-datasets-stand-in'\n")
    imports = "import datasets; import labdata" if order == "datasets_first" else \
        "import labdata; import labdata.catalog; import datasets"
    code = f"{imports}; print(datasets.MARKER); print(datasets.__file__)"
    proc = _run(code, tmp_path / "site")
    assert proc.returncode == 0, proc.stderr
    marker, path = proc.stdout.split()
    assert marker == "huggingface-datasets-stand-in"
    assert Path(path) == fake / "__init__.py"


def test_labdata_does_not_register_a_datasets_module():
    proc = _run("import sys, labdata, labdata.catalog; print('datasets' in sys.modules)", None)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"
