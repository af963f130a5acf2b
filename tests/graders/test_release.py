"""The learner copy: no reference code in it, and it can be graded."""
from __future__ import annotations

import subprocess
import sys

import pytest

from gradelib import ROOT, run_grade
from graders.release import check_release, release_files, write_release

needs_reference = pytest.mark.skipif(not (ROOT / "phase1_basics" / "reference").is_dir(),
                                     reason="no reference solution in this copy (learner release)")


@needs_reference
def test_release_manifest_leaves_out_every_reference():
    files = [p.as_posix() for p in release_files()]
    assert "phase1_basics/starter/latency.py" in files
    assert "phase2_optimization/quantization/starter/affine.py" in files
    assert "phase2_optimization/quantization/types.py" in files         # shared helpers are the learner's too
    assert "graders/plugin.py" in files
    assert not [f for f in files if "/reference/" in f]


@needs_reference
def test_check_release_catches_leaked_reference_code(tmp_path):
    leak = tmp_path / "phase1_basics" / "starter"
    leak.mkdir(parents=True)
    (leak / "latency.py").write_text((ROOT / "phase1_basics/reference/latency.py").read_text())
    problems = check_release(tmp_path)
    assert any("reference banner" in p for p in problems)
    assert any("carries a solution marker" in p for p in problems)
    assert any("has the body of" in p for p in problems)


@needs_reference
def test_check_release_catches_a_solution_copied_anywhere(tmp_path):
    """A reference function pasted, without banner or markers, into any file of the copy (a test, say)."""
    from graders.starters import to_solution

    solution = to_solution((ROOT / "phase3_advanced/batching/reference/loadgen.py").read_text())
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_helpers.py").write_text(solution)
    problems = check_release(tmp_path)
    assert any(p.startswith("tests/test_helpers.py:run_closed_loop has the body of") for p in problems), problems


@needs_reference
@pytest.mark.slow
@pytest.mark.grading
def test_release_is_clean_and_gradable(tmp_path):
    dest = tmp_path / "learner"
    p = subprocess.run([sys.executable, "-m", "graders", "release", "--dest", str(dest)], cwd=ROOT,
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert not list(dest.glob("phase*/reference"))
    assert check_release(dest) == []
    assert (dest / "Makefile").is_file() and (dest / "phase1_basics" / "IMPLEMENTATION_GUIDE.md").is_file()
    # Grade the stubs with the release's own graders, from inside the release.
    g = run_grade(tmp_path / "grade", "--phase", "1", "--quick", "--task", "2", cwd=dest)
    assert g.code == 1 and "Traceback" not in g.stdout
    assert all(c["verdict"] == "fail" and "not implemented" in c["message"] for c in g.results["criteria"])


def test_release_refuses_a_folder_inside_the_repo():
    with pytest.raises(ValueError):
        write_release(ROOT / "grades" / "release-here")
