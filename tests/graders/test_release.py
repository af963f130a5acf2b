"""The learner copy: no reference code and no instructor-only test in it, learner commands only in its
``make help``, a one-line refusal of ``IMPL=reference``, and it can be graded."""
from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from gradelib import ROOT, run_grade
from graders.release import check_release, embedded_exercises, instructor_only, release_files, write_release

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


@pytest.fixture(scope="module")
def learner(tmp_path_factory):
    """One learner copy for the module, written by the command line as ``make release`` does."""
    if not (ROOT / "phase1_basics" / "reference").is_dir():
        pytest.skip("no reference solution in this copy (learner release)")
    dest = tmp_path_factory.mktemp("release") / "learner"
    p = subprocess.run([sys.executable, "-m", "graders", "release", "--dest", str(dest)], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    return dest


def test_release_holds_no_leak_and_no_instructor_only_test(learner):
    assert check_release(learner) == []
    assert not list(learner.glob("phase*/reference")) and not list(learner.glob("phase*/*/reference"))
    assert not (learner / "tests" / "graders").exists()                    # instructor-only as a whole
    assert (learner / "tests" / "phase1" / "test_latency.py").is_file()     # the learner's unit tests stay
    assert (learner / "tests" / "course").is_dir() and (learner / "tests" / "gradelib.py").is_file()
    assert not [p for p in learner.rglob("*.py") if "/starter/" not in p.as_posix() and embedded_exercises(p)]


@needs_reference
def test_instructor_only_tests_are_the_ones_that_embed_solutions(tmp_path):
    # The gradebook test grades a complete summarize_latencies (10/10), written in a string.
    assert "summarize_latencies" in embedded_exercises(ROOT / "tests/graders/test_broken_phase1.py")
    assert instructor_only("tests/graders/test_verdicts.py")        # the whole folder, solutions or not
    assert not instructor_only("tests/phase1/test_latency.py")      # calls the learner's code, holds none
    assert not instructor_only("graders/plugin.py")                 # graders ship; a hit there fails the release
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text(
        "CODE = '''\nclass DynamicBatcher:\n    def submit(self, x):\n        a = 1\n        b = 2\n"
        "        return a + b\n'''\n")
    (tmp_path / "tests" / "test_stub.py").write_text("def summarize_latencies(s):\n    return 1\n")
    assert embedded_exercises(tmp_path / "tests" / "test_x.py") == ["DynamicBatcher.submit"]
    assert instructor_only("tests/test_x.py", tmp_path) and not instructor_only("tests/test_stub.py", tmp_path)


def _reference_function(rel: str, name: str) -> str:
    """The source of one function of a reference file, as its solution view (prompts removed)."""
    import ast

    from graders.starters import to_solution

    solution = to_solution((ROOT / rel).read_text())
    node = next(n for n in ast.walk(ast.parse(solution)) if isinstance(n, ast.FunctionDef) and n.name == name)
    return ast.get_source_segment(solution, node)


@needs_reference
def test_a_seeded_leak_fails_the_release_naming_file_and_function(tmp_path, monkeypatch, capsys):
    """A reference solution pasted into a released test, inside a string: `make release` exits 2 naming
    file:function, and leaves no copy behind."""
    from graders import cli, release

    leak = _reference_function("phase1_basics/reference/latency.py", "summarize_latencies")
    copy2 = release.shutil.copy2

    def copy_and_seed(src, dst, **kw):
        copy2(src, dst, **kw)
        if str(dst).endswith("tests/phase1/test_latency.py"):
            with open(dst, "a") as f:
                f.write(f"\n\nPASTED = {leak!r}\n")

    monkeypatch.setattr(release.shutil, "copy2", copy_and_seed)
    dest = tmp_path / "learner"
    assert cli.main(["release", "--dest", str(dest)]) == 2
    err = capsys.readouterr().err
    assert "tests/phase1/test_latency.py:summarize_latencies has the body of " \
           "phase1_basics/reference/latency.py:summarize_latencies" in err, err
    assert "tests/phase1/test_latency.py:summarize_latencies embeds the implementation" in err
    assert not dest.exists()


def test_learner_help_lists_learner_commands_only(learner):
    if shutil.which("make") is None:
        pytest.skip("needs make")
    mine = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    theirs = subprocess.run(["make", "-s", "help"], cwd=learner, capture_output=True, text=True, timeout=60)
    assert mine.returncode == theirs.returncode == 0, mine.stderr + theirs.stderr
    assert "make release" in mine.stdout and "instructor commands:" in mine.stdout
    out = theirs.stdout
    for cmd in ("make setup", "make grade PHASE=1", "make test-task PHASE=1 TASK=2", "make test-fast", "make help"):
        assert cmd in out
    for instructor in ("release", "gradebook", "stability", "IMPL=reference", "SUBMISSION", "starters",
                       "instructor"):
        assert instructor not in out, instructor
    lines = out.splitlines()
    assert "##" not in out and not [s for s in lines if s.startswith(("make", "sed", "awk", "for "))]
    commands = [s for s in lines if s.startswith("  ")]
    assert len({len(s) - len(s[42:].lstrip()) for s in commands if len(s) > 42}) == 1  # one column of text


def test_reference_grade_in_the_learner_copy_is_one_clear_line(learner):
    for args in (["--phase", "1"], ["--phase", "2", "--task", "4"]):
        p = subprocess.run([sys.executable, "-m", "graders", "grade", *args, "--impl", "reference"], cwd=learner,
                           capture_output=True, text=True, timeout=300)
        assert p.returncode == 2, p.stdout + p.stderr
        assert p.stderr.strip().splitlines() == [
            f"error: the learner copy has no reference solution; grade your starter (the default): "
            f"make grade PHASE={args[1]}"]
        assert "FAIL" not in p.stdout and "Grading" not in p.stdout
    assert not (learner / "grades").exists()


@pytest.mark.slow
@pytest.mark.grading
def test_release_is_gradable(learner, tmp_path):
    dest = learner
    assert (dest / "Makefile").is_file() and (dest / "phase1_basics" / "IMPLEMENTATION_GUIDE.md").is_file()
    # Grade the stubs with the release's own graders, from inside the release.
    g = run_grade(tmp_path / "grade", "--phase", "1", "--quick", "--task", "2", cwd=dest)
    assert g.code == 1 and "Traceback" not in g.stdout
    assert all(c["verdict"] == "fail" and "not implemented" in c["message"] for c in g.results["criteria"])


def test_release_refuses_a_folder_inside_the_repo():
    with pytest.raises(ValueError):
        write_release(ROOT / "grades" / "release-here")
