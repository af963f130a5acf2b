"""The Gradescope autograder bundle (``make gradescope``): what the zip holds (no reference code), its two
scripts, and ``run_autograder`` end to end in a simulated ``/autograder`` (``AUTOGRADER_ROOT``) with this
venv's Python (``AUTOGRADER_PYTHON``; setup.sh's pip install needs the network). Every results.json is
checked against Gradescope's documented fields. Each grade is restricted to one criterion, quick: task 1.1's
(the loading task) for the full-marks case, the cheaper ``p1.stats_exact`` where the score must be 0."""
from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from gradelib import ROOT
from graders.autograder import write_bundle
from graders.autograder_run import locate_upload
from graders.course import phase as course_phase
from graders.release import check_release, release_files
from graders.reporting.gradescope import TEST_KEYS, TOP_LEVEL_KEYS

pytestmark = pytest.mark.skipif(not (ROOT / "phase1_basics" / "reference").is_dir(),
                                reason="no reference solution in this copy (learner release)")

SCOPE = "--task 1 --quick"                          # one criterion, p1.formats_agree (~20 s)
CHEAP = "--criterion p1.stats_exact --quick"        # numpy only (~12 s): for the cases that must score 0
VISIBILITY = {"hidden", "after_due_date", "after_published", "visible"}
FORMATS = {"text", "html", "simple_format", "md", "ansi"}


# ## Gradescope's results.json, as documented --------------------------------------------------------

def check_gradescope(data: dict) -> dict:
    """Assert ``data`` is a results.json Gradescope accepts (types, statuses, sum of tests == score)."""
    assert set(data) <= {*TOP_LEVEL_KEYS, "extra_data", "leaderboard"}, set(data)
    score = data["score"]
    assert isinstance(score, (int, float)) and not isinstance(score, bool) and math.isfinite(score)
    assert isinstance(data.get("execution_time", 0), int)
    assert isinstance(data.get("output", ""), str)
    assert data.get("output_format", "text") in FORMATS
    assert data.get("visibility", "visible") in VISIBILITY
    assert data.get("stdout_visibility", "visible") in VISIBILITY
    assert isinstance(data["tests"], list)
    for t in data["tests"]:
        assert set(t) <= {*TEST_KEYS, "extra_data"}, set(t)
        assert isinstance(t["name"], str) and t["name"]
        for key in ("score", "max_score"):
            assert isinstance(t[key], (int, float)) and not isinstance(t[key], bool) and math.isfinite(t[key])
        assert t["status"] in ("passed", "failed")
        assert isinstance(t.get("output", ""), str)
        assert t.get("output_format", "text") in FORMATS
        assert t.get("visibility", "visible") in VISIBILITY
        assert all(isinstance(tag, str) for tag in t.get("tags", []))
    assert math.isclose(sum(t["score"] for t in data["tests"]), score, abs_tol=1e-6)
    return data


# ## The bundle ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> tuple[Path, Path]:
    """(the zip, its contents unpacked as Gradescope does into ``.../autograder/source``)."""
    tmp = tmp_path_factory.mktemp("gradescope")
    zpath = tmp / "autograder.zip"
    p = subprocess.run([sys.executable, "-m", "graders", "gradescope", "--phase", "1", "--dest", str(zpath)],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    source = tmp / "unpacked" / "source"
    with zipfile.ZipFile(zpath) as zf:
        zf.extractall(source)
    return zpath, source


def test_bundle_layout(bundle):
    zpath, _ = bundle
    with zipfile.ZipFile(zpath) as zf:
        infos = {i.filename: i for i in zf.infolist()}
    for script in ("setup.sh", "run_autograder"):           # at the zip's root, executable
        assert infos[script].external_attr >> 16 & 0o111, script
    for needed in ("pyproject.toml", "README.md", "graders/cli.py", "graders/autograder_run.py",
                   "graders/phase1/__init__.py", "phase1_basics/EXPECTED_OUTCOMES.md",
                   "phase1_basics/starter/loading.py", "phase1_basics/types.py", "datasets/labdata/generate.py",
                   "datasets/labdata/train.py", "phase2_optimization/quantization/starter/affine.py"):
        assert needed in infos, needed
    assert not [n for n in infos if n.startswith(("tests/", "notebooks/", ".ci/", ".venv/", "datasets/cache/"))]


def test_bundle_holds_no_reference_code(bundle):
    zpath, source = bundle
    with zipfile.ZipFile(zpath) as zf:
        names = zf.namelist()
    assert not [n for n in names if "/reference/" in f"/{n}"]
    assert check_release(source) == []                     # banner, markers, reference function bodies
    # Lines that only the reference solutions hold (found in no other file of the repo) appear in no bundle file.
    elsewhere = "\n".join((ROOT / rel).read_text(errors="replace") for rel in release_files()
                           if rel.suffix in (".py", ".md", ".toml", ".txt", ".sh"))
    distinctive = set()
    for ref in ROOT.glob("phase*/**/reference/*.py"):
        inside = False
        for line in ref.read_text().splitlines():
            if line.strip() in ("# BEGIN SOLUTION", "# END SOLUTION"):
                inside = line.strip() == "# BEGIN SOLUTION"
            elif inside and len(line.strip()) >= 30 and line.strip() not in elsewhere:
                distinctive.add(line.strip())
    assert len(distinctive) > 50                            # the check has teeth
    for f in source.rglob("*"):
        if f.is_file():
            text = f.read_text(errors="replace")
            leaked = [line for line in distinctive if line in text]
            assert not leaked, f"{f.relative_to(source)} holds reference code: {leaked[:3]}"


def test_bundle_refuses_an_unknown_part(tmp_path):
    from graders.course import CourseError

    with pytest.raises(CourseError):
        write_bundle(2, tmp_path / "x.zip", part="nope")
    assert not (tmp_path / "x.zip").exists()


def test_setup_script(bundle):
    _, source = bundle
    text = (source / "setup.sh").read_text()
    assert subprocess.run(["bash", "-n", str(source / "setup.sh")]).returncode == 0
    assert subprocess.run(["bash", "-n", str(source / "run_autograder")]).returncode == 0
    assert re.search(r'if ! id -u "\$CHILD_USER"[^\n]*; then\s+useradd\b', text), "useradd must be guarded"
    assert 'CHILD_USER="student"' in text
    assert re.search(r'pip install .*-e "\$SOURCE"', text)
    assert "-m venv" in text and "labdata.generate" in text and "labdata.train --all" in text
    assert "download.pytorch.org/whl/cpu" in text and "torch>=" in text


# ## Finding the learner's code in an upload -----------------------------------------------------------

def _tree(root: Path, files: list[str]) -> Path:
    for f in files:
        (root / f).parent.mkdir(parents=True, exist_ok=True)
        (root / f).write_text("# learner\n")
    return root


@pytest.mark.parametrize("files, kind, starter", [
    (["pyproject.toml", "phase1_basics/starter/loading.py"], "a copy of the repo (phase1_basics/)",
     "phase1_basics/starter"),
    (["my-copy/README.md", "my-copy/phase1_basics/starter/loading.py"], "a copy of the repo (my-copy/phase1_basics/)",
     "my-copy/phase1_basics/starter"),
    (["phase1_basics/starter/loading.py"], "the phase folder (phase1_basics/)", "phase1_basics/starter"),
    (["starter/loading.py", "EXPECTED_OUTCOMES.md"], "a starter/ folder (starter/)", "starter"),
])
def test_locate_upload_folders(tmp_path, files, kind, starter):
    ph = course_phase(1)
    up = locate_upload(_tree(tmp_path / "up", files), ph, list(ph.parts), ROOT)
    assert up.kind == kind
    assert up.starters == {"phase1_basics": tmp_path / "up" / starter}


def test_locate_upload_loose_files_and_nothing(tmp_path):
    ph = course_phase(1)
    up = locate_upload(_tree(tmp_path / "a", ["loading.py", "notes.py", "x/latency.py"]), ph, list(ph.parts), ROOT)
    assert up.kind == "loose starter files"
    assert sorted(p.name for p in up.files["phase1_basics"]) == ["latency.py", "loading.py"]
    up = locate_upload(_tree(tmp_path / "b", ["essay.txt"]), ph, list(ph.parts), ROOT)
    assert up.kind == "nothing the grader recognises" and not up.starters and not up.files
    assert locate_upload(tmp_path / "missing", ph, list(ph.parts), ROOT).kind == "an empty upload"


def test_locate_upload_multipart(tmp_path):
    ph = course_phase(2)
    up = locate_upload(_tree(tmp_path / "p", ["quantization/starter/affine.py", "compilation/starter/export.py"]),
                       ph, list(ph.parts), ROOT)
    assert set(up.starters) == {"phase2_optimization/quantization", "phase2_optimization/compilation"}
    up = locate_upload(_tree(tmp_path / "q", ["affine.py", "__init__.py"]), ph, [ph.part("quantization")], ROOT)
    assert [p.name for p in up.files["phase2_optimization/quantization"]] == ["__init__.py", "affine.py"]
    # every part at once: a loose __init__.py could be any part's, so only names unique to one part count
    up = locate_upload(_tree(tmp_path / "r", ["affine.py", "__init__.py", "src/export.py", "starter/x.py"]),
                       ph, list(ph.parts), ROOT)
    assert {f: [p.name for p in files] for f, files in up.files.items()} == {
        "phase2_optimization/quantization": ["affine.py"], "phase2_optimization/compilation": ["export.py"]}


def test_child_user_only_as_root_with_the_user_and_the_flag(monkeypatch):
    import pwd
    import types

    from graders import autograder_run

    helptext = types.SimpleNamespace(stdout="  --child-user NAME  run the grading child as NAME\n")
    monkeypatch.setattr(autograder_run.subprocess, "run", lambda *a, **k: helptext)
    monkeypatch.setattr(pwd, "getpwnam", lambda name: object())
    monkeypatch.setattr(autograder_run.os, "geteuid", lambda: 1000)
    assert autograder_run._child_user_args("python", ROOT) == ([], None)          # not root: nothing to drop
    monkeypatch.setattr(autograder_run.os, "geteuid", lambda: 0)
    assert autograder_run._child_user_args("python", ROOT) == (["--child-user", "student"], None)
    helptext.stdout = "usage: ..."
    args, warning = autograder_run._child_user_args("python", ROOT)
    assert args == [] and "runs as root" in warning

    def no_user(name):
        raise KeyError(name)

    monkeypatch.setattr(pwd, "getpwnam", no_user)
    args, warning = autograder_run._child_user_args("python", ROOT)
    assert args == [] and "no user 'student'" in warning


# ## run_autograder end to end -------------------------------------------------------------------------

def autograde(tmp_path: Path, source: Path, files: dict[str, str], *, base: str = "phase1_basics",
              args: str = SCOPE, python: str = sys.executable, env: dict | None = None) -> tuple[dict, str]:
    """Upload ``files`` (path -> text; ``base`` is the course folder to start from, or "" for nothing),
    run run_autograder as Gradescope would, and return (results.json, its stdout)."""
    root = tmp_path / "autograder"
    root.mkdir()
    (root / "source").symlink_to(source)
    sub = root / "submission"
    sub.mkdir()
    if base:
        shutil.copytree(ROOT / base, sub / base, ignore=shutil.ignore_patterns("reference", "__pycache__"))
    for rel, text in files.items():
        (sub / rel).parent.mkdir(parents=True, exist_ok=True)
        (sub / rel).write_text(text)
    # No child user: the grading child runs as the caller (a test machine has no `student`, and its venv's
    # Python may not be readable by one).
    env = {**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, **(env or {}),
           "AUTOGRADER_ROOT": str(root), "AUTOGRADER_PYTHON": python, "AUTOGRADER_ARGS": args,
           "AUTOGRADER_CHILD_USER": "inference-lab-no-such-user"}
    p = subprocess.run(["bash", str(source / "run_autograder")], cwd=root, env=env, capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    return check_gradescope(json.loads((root / "results" / "results.json").read_text())), p.stdout + p.stderr


def _outputs(data: dict) -> str:
    return "\n".join([data.get("output", ""), *(t.get("output", "") for t in data["tests"])])


@pytest.mark.grading
def test_reference_code_in_the_starter_gets_full_marks(tmp_path, bundle):
    """A copy of the repo whose starter/ holds the reference's code: full marks for task 1.1."""
    files = {"pyproject.toml": "", **{f"phase1_basics/starter/{f.name}": f.read_text()
                                      for f in (ROOT / "phase1_basics" / "reference").glob("*.py")}}
    data, log = autograde(tmp_path, bundle[1], files)
    assert data["tests"] and all(t["status"] == "passed" for t in data["tests"]), _outputs(data)
    assert data["score"] == sum(t["max_score"] for t in data["tests"]) > 0
    assert "Found in your upload: a copy of the repo (phase1_basics/)" in data["output"]


@pytest.mark.grading
def test_the_stub_scores_zero(tmp_path, bundle):
    data, _ = autograde(tmp_path, bundle[1], {}, args=CHEAP)
    assert data["score"] == 0 and data["tests"]
    assert all(t["status"] == "failed" for t in data["tests"] if t["max_score"] > 0)
    assert "NotImplementedError" in _outputs(data) or "Task 1.2" in _outputs(data)


@pytest.mark.grading
def test_a_syntax_error_still_gives_a_result(tmp_path, bundle):
    """Only loose starter files uploaded, one of which does not parse: 0, with the error in the output."""
    data, _ = autograde(tmp_path, bundle[1], {"loading.py": "def load_predictor(:\n    pass\n"}, base="",
                        args=CHEAP)
    assert data["score"] == 0
    assert "Found in your upload: loose starter files." in data["output"]
    assert "Syntax error in your code: loading.py line 1" in data["output"]
    assert "SyntaxError" in _outputs(data)          # the grader's own import failure, per criterion


@pytest.mark.grading
def test_a_cheat_cannot_write_its_own_results(tmp_path, bundle):
    """The learner's __init__.py writes a full-marks results.json and tries to use the reference."""
    fake = tmp_path / "autograder" / "results" / "results.json"
    cheat = (ROOT / "phase1_basics/starter/__init__.py").read_text() + f'''
import json as _json, pathlib as _pathlib
try:
    _pathlib.Path({str(fake)!r}).parent.mkdir(parents=True, exist_ok=True)
    _pathlib.Path({str(fake)!r}).write_text(_json.dumps({{"score": 999.0, "tests": [
        {{"name": "all", "score": 999.0, "max_score": 999.0, "status": "passed"}}]}}))
except OSError:
    pass
try:
    from phase1_basics.reference.latency import summarize_latencies  # noqa: F401
except ImportError:
    pass
'''
    data, _ = autograde(tmp_path, bundle[1], {"phase1_basics/starter/__init__.py": cheat}, args=CHEAP)
    assert data["score"] == 0
    assert [t["number"] for t in data["tests"]] == ["p1.stats_exact"]
    assert "999" not in json.dumps(data)


def test_no_python_still_gives_a_result(tmp_path, bundle):
    data, _ = autograde(tmp_path, bundle[1], {}, python=str(tmp_path / "no-such-python"))
    assert data["score"] == 0 and "could not start" in data["output"]


def test_a_grader_that_cannot_run_still_gives_a_result(tmp_path, bundle):
    data, _ = autograde(tmp_path, bundle[1], {}, args="--task 99")
    assert data["score"] == 0 and data["tests"][0]["status"] == "failed"
    assert "could not grade" in data["output"] and "no task 1.99" in data["output"]


def test_a_grade_past_its_time_limit_still_gives_a_result(tmp_path, bundle):
    data, _ = autograde(tmp_path, bundle[1], {}, args=CHEAP, env={"AUTOGRADER_TIMEOUT_S": "1"})
    assert data["score"] == 0 and "ran past AUTOGRADER_TIMEOUT_S=1 s" in data["output"]
