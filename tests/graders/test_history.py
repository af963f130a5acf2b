"""Report history: each grade appends a line to ``history.jsonl`` in the grades root, and each report.md
lists this copy's grades, newest first; every selection (``TASK=N``) keeps a report folder of its own."""
from __future__ import annotations

import json

import pytest

from gradelib import ROOT, run_grade
from graders.cli import _default_out
from graders.records import CriterionResult, GradeRun
from graders.reporting import write_all
from graders.reporting.history import (
    HISTORY_NAME,
    MAX_ROWS,
    append_history,
    history_entry,
    history_file,
    read_history,
)


def _run(task: int, points: float, *, submission: str = "/copies/mine", started: str = "2025-01-0{}T10:00:00+00:00"):
    crit = CriterionResult(id=f"p1.c{task}", title="a criterion", phase=1, task=task, guide="", metric="m",
                           unit="", better="higher", verdict="pass" if points else "fail", points=points,
                           max_points=10)
    return GradeRun(phase=1, impl="starter", submission=submission, profile="cpu", fingerprint={},
                    started_at=started.format(task), duration_s=1.0, criteria=[crit], quick=True, task=task)


def _grade_like_the_cli(run: GradeRun, out) -> str:
    """What ``python -m graders grade`` does after grading: report with the history, then append."""
    entry = history_entry(run, out)
    paths = write_all(run, out, history=[*read_history(history_file(out)), entry])
    append_history(history_file(out), entry)
    return paths["report"].read_text()


def test_each_grade_appends_a_line_and_the_report_lists_every_grade_newest_first(tmp_path):
    grades = tmp_path / "grades"
    first = _grade_like_the_cli(_run(1, 0), grades / "phase1-task1-starter-this-copy")
    _grade_like_the_cli(_run(3, 10, submission="/copies/alice"), grades / "phase1-task3-starter-alice")
    second = _grade_like_the_cli(_run(2, 7), grades / "phase1-task2-starter-this-copy")

    lines = [json.loads(s) for s in (grades / HISTORY_NAME).read_text().splitlines()]
    assert [(r["task"], r["score"], r["max"], r["exit"]) for r in lines] == [(1, 0, 10, 1), (3, 10, 10, 0), (2, 7, 10, 0)]
    assert set(lines[0]) >= {"time", "phase", "part", "task", "impl", "submission", "profile", "score", "max",
                             "report_dir"}
    assert lines[0]["report_dir"] == str((grades / "phase1-task1-starter-this-copy").resolve())

    assert "## History" in first and first.count("| phase 1, task") == 1
    history = second.split("## History", 1)[1].split("\n## ", 1)[0]
    rows = [s for s in history.splitlines() if s.startswith("| 2025")]
    assert len(rows) == 2, history                                  # alice's grade is not this copy's
    assert "task 1.2" in rows[0] and "7 / 10" in rows[0] and "2025-01-02T10:00:00" in rows[0]   # newest first
    assert "task 1.1" in rows[1] and "0 / 10" in rows[1]
    assert "(../phase1-task1-starter-this-copy/report.md)" in rows[1]


def test_the_report_shows_at_most_max_rows_and_survives_a_broken_line(tmp_path):
    out = tmp_path / "grades" / "phase1-starter-this-copy"
    history = history_file(out)
    for i in range(MAX_ROWS + 5):
        append_history(history, history_entry(_run(1, 0, started=f"2025-02-01T10:00:{i:02d}+00:00"), out))
    with open(history, "a") as f:
        f.write('{"cut short by a kill\n')
    assert len(read_history(history)) == MAX_ROWS + 5
    report = _grade_like_the_cli(_run(1, 10, started="2025-03-01T00:00:00+00:00"), out)
    rows = [s for s in report.splitlines() if s.startswith("| 2025")]
    assert len(rows) == MAX_ROWS and rows[0].startswith("| 2025-03-01")
    assert f"(6 older grades are in `{HISTORY_NAME}`.)" in report


def test_each_task_keeps_a_report_folder_of_its_own():
    outs = {_default_out(1, "starter", None, task=t) for t in (1, 2, None)}
    outs.add(_default_out(2, "starter", None, part="quantization", task=4))
    assert {o.name for o in outs} == {"phase1-task1-starter-this-copy", "phase1-task2-starter-this-copy",
                                     "phase1-starter-this-copy", "phase2-quantization-task4-starter-this-copy"}
    assert {history_file(o) for o in outs} == {ROOT / "grades" / HISTORY_NAME}


@pytest.mark.slow
@pytest.mark.grading
def test_two_grades_the_second_report_lists_both(tmp_path):
    grades = tmp_path / "grades"
    for task in (1, 2):
        g = run_grade(grades / f"phase1-task{task}-starter-this-copy", "--phase", "1", "--quick", "--task", str(task))
        assert g.code == 1 and "Traceback" not in g.stdout, g.stdout[-3000:]
    assert [r["task"] for r in read_history(grades / HISTORY_NAME)] == [1, 2]
    report = (grades / "phase1-task2-starter-this-copy" / "report.md").read_text()
    rows = [s for s in report.split("## History", 1)[1].splitlines() if s.startswith("| 20")]
    assert len(rows) == 2 and "task 1.2" in rows[0] and "task 1.1" in rows[1], rows
