"""Helpers for tests that run the grader end to end, in a subprocess, as a user would."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Graded:
    code: int
    stdout: str
    out: Path

    @property
    def results(self) -> dict:
        return json.loads((self.out / "results.json").read_text())

    @property
    def verdicts(self) -> dict[str, str]:
        return {c["id"]: c["verdict"] for c in self.results["criteria"]}

    def criterion(self, cid: str) -> dict:
        return next(c for c in self.results["criteria"] if c["id"] == cid)

    def events(self) -> list[dict]:
        """Every event the grading children streamed (one records file per part), in file order."""
        return [json.loads(line) for f in sorted(self.out.glob("records*.jsonl"))
                for line in f.read_text().splitlines() if line.strip()]

    def imported(self) -> list[str]:
        """The phase modules the grading children imported (each child's session_end)."""
        return sorted({m for e in self.events() if e["event"] == "session_end" for m in e["modules"]})


def run_grade(out: Path, *args: str, cwd: Path = ROOT, env: dict | None = None, timeout: float = 600) -> Graded:
    e = dict(os.environ, **(env or {}))
    e.pop("PYTHONPATH", None)
    p = subprocess.run([sys.executable, "-m", "graders", "grade", *args, "--out", str(out)], cwd=cwd,
                       env=e, capture_output=True, text=True, timeout=timeout)
    return Graded(p.returncode, p.stdout + p.stderr, out)


def make_submission(tmp: Path, patches: dict[str, str], part_folder: str = "phase1_basics") -> Path:
    """A learner's copy: the starter stubs of the whole phase, with code appended to some files of one
    part's ``starter/`` (``patches``: file name -> code, which redefines the functions it names)."""
    sub = tmp / "submission"
    phase_dir = part_folder.split("/")[0]
    shutil.copytree(ROOT / phase_dir, sub / phase_dir, ignore=shutil.ignore_patterns("reference", "__pycache__"))
    for rel, code in patches.items():
        f = sub / part_folder / "starter" / rel
        f.write_text(f.read_text() + "\n\n" + code)
    return sub


def reference_with(part_folder: str, file: str, old: str, new: str) -> str:
    """The source of ``<part_folder>/reference/<file>`` with ``old`` replaced by ``new`` (which must occur
    exactly once): one mistake placed in the reference, for a broken-submission test. Skips the test in a learner
    release, which has no reference."""
    import pytest

    path = ROOT / part_folder / "reference" / file
    if not path.is_file():
        pytest.skip("no reference solution in this copy (learner release)")
    src = path.read_text()
    assert src.count(old) == 1, f"{old!r} occurs {src.count(old)} times in {file}"
    return src.replace(old, new)


def grade_broken(tmp: Path, part_folder: str, file: str, code: str, *criteria: str, on_reference: bool = False,
                 also: dict[str, str] | None = None) -> Graded:
    """Grade ``criteria`` (quick mode) of a learner's copy whose ``starter/<file>`` is ``code``; the part's other
    files are stubs, or with ``on_reference`` the reference's (for a part that only runs when every task is there);
    ``also`` replaces more files of ``starter/`` (name -> source) for a mistake that spans two files.
    Asserts the grader itself did not crash, so a test's verdict is about the submission."""
    sub = make_submission(tmp, {}, part_folder)
    if on_reference:
        for src in (ROOT / part_folder / "reference").glob("*.py"):
            if src.name != "__init__.py":
                shutil.copyfile(src, sub / part_folder / "starter" / src.name)
    (sub / part_folder / "starter" / file).write_text(code)
    for name, source in (also or {}).items():
        (sub / part_folder / "starter" / name).write_text(source)
    phase = re.match(r"phase(\d+)_", part_folder).group(1)
    args = ["--phase", phase, "--part", part_folder.split("/")[1], "--quick", "--submission", str(sub)]
    for cid in criteria:
        args += ["--criterion", cid]
    g = run_grade(tmp / "grade", *args)
    assert "Traceback" not in g.stdout and not g.results["grader_errors"], g.stdout[-3000:]
    return g
