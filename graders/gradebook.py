"""Grade a folder of submissions into a gradebook (one CSV row per submission).

    python -m graders batch --phase 1 [--part P] --submissions DIR [--out DIR] [--quick] [--task N]

Every sub-folder of DIR that holds the phase's folder (for example ``alice/phase1_basics/``) is
graded as ``--submission``; reports go to ``OUT/<name>/``, and ``OUT/gradebook.csv`` gets one row per
submission: total points, exit code, and the points of each criterion. A submission whose grading
breaks is recorded with its error and the batch goes on.
"""
from __future__ import annotations

import csv
from pathlib import Path

from .course import phase as course_phase
from .outcomes import load_outcomes
from .records import GradeRun

__all__ = ["find_submissions", "grade_folder"]


def find_submissions(folder: Path, phase: int) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder of submissions")
    return sorted(p for p in folder.iterdir() if (p / course_phase(phase).folder).is_dir())


def grade_folder(folder: Path, phase: int, out: Path, *, part: str | None = None, quick: bool = False,
                 task: int | None = None,
                 profile: str | None = None, log=print) -> Path:
    """Grade every submission in ``folder``; return the path of ``gradebook.csv``."""
    from .reporting import write_all
    from .runner import grade_phase

    subs = find_submissions(folder, phase)
    if not subs:
        raise FileNotFoundError(f"no sub-folder of {folder} holds {course_phase(phase).folder}/")
    ids = [c.id for c in load_outcomes(phase).select(part=part, task=task)]
    out.mkdir(parents=True, exist_ok=True)
    book = out / "gradebook.csv"
    with open(book, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["submission", "points", "max_points", "exit_code", "passed", "failed", "inconclusive",
                    "errors", *ids])
        for sub in subs:
            log(f"== {sub.name}")
            run: GradeRun = grade_phase(phase, part=part, submission=sub, quick=quick, task=task, profile=profile,
                                        out=out / sub.name, log=lambda s: None)
            write_all(run, out / sub.name)
            count = {v: sum(c.verdict == v for c in run.criteria) for v in ("pass", "fail", "inconclusive")}
            pts = {c.id: c.points for c in run.criteria}
            w.writerow([sub.name, run.points, run.max_points, run.exit_code, count["pass"], count["fail"],
                        count["inconclusive"], " | ".join(run.grader_errors)[:500],
                        *[pts.get(i, "") for i in ids]])
            f.flush()
            log(f"   {run.points:g}/{run.max_points:g} points, exit {run.exit_code}")
    return book
