"""Helpers for tests that run the grader end to end, in a subprocess, as a user would."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


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
        return [json.loads(l) for l in (self.out / "records.jsonl").read_text().splitlines() if l.strip()]


def run_grade(out: Path, *args: str, cwd: Path = ROOT, env: dict | None = None, timeout: float = 600) -> Graded:
    e = dict(os.environ, **(env or {}))
    e.pop("PYTHONPATH", None)
    p = subprocess.run([sys.executable, "-m", "graders", "grade", *args, "--out", str(out)], cwd=cwd,
                       env=e, capture_output=True, text=True, timeout=timeout)
    return Graded(p.returncode, p.stdout + p.stderr, out)


def make_submission(tmp: Path, patches: dict[str, str], phase_dir: str = "phase1_basics") -> Path:
    """A learner's copy: the starter stubs, with some functions replaced by ``patches`` (file -> code)."""
    sub = tmp / "submission"
    shutil.copytree(ROOT / phase_dir, sub / phase_dir, ignore=shutil.ignore_patterns("reference", "__pycache__"))
    for rel, code in patches.items():
        f = sub / phase_dir / "starter" / rel
        f.write_text(f.read_text() + "\n\n" + code)
    return sub
