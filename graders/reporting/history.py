"""Report history: one line per ``make grade`` in ``history.jsonl``, and the report's progress table.

Every grade appends one JSON line to ``history.jsonl`` in the folder that holds its report folder (the
grades root: ``grades/history.jsonl`` for the default ``grades/phase1-task2-starter-this-copy/``). Each
line is one :func:`history_entry`: when (ISO time), what (phase, part, task, implementation,
submission, profile, quick), the score (points, max, exit code) and the report folder. ``report.md``
then lists, newest first, the grades of the same submission (this copy, or one learner's copy), so a
learner sees their progress over time. A history line that cannot be read is skipped, never fatal.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from graders.records import GradeRun
from graders.reporting._format import DASH, fmt_points

__all__ = ["HISTORY_NAME", "MAX_ROWS", "history_file", "history_entry", "read_history", "append_history",
           "history_section"]

HISTORY_NAME = "history.jsonl"
#: The report lists at most this many grades (newest first); the file keeps every one.
MAX_ROWS = 20


def history_file(out_dir: str | Path) -> Path:
    """The history of the grades root that holds ``out_dir``: ``grades/history.jsonl``."""
    return Path(out_dir).resolve().parent / HISTORY_NAME


def history_entry(run: GradeRun, out_dir: str | Path) -> dict[str, Any]:
    """The history line of one finished grade (plain JSON types only)."""
    return {
        "time": run.started_at,
        "phase": run.phase,
        "part": run.part,
        "task": run.task,
        "impl": run.impl,
        "submission": run.submission,
        "profile": run.profile,
        "quick": bool(run.quick),
        "score": round(float(run.points), 4),
        "max": round(float(run.max_points), 4),
        "exit": run.exit_code,
        "report_dir": str(Path(out_dir).resolve()),
    }


def read_history(path: str | Path) -> list[dict[str, Any]]:
    """Every readable line of a history file, oldest first (none when the file is missing)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return []
    rows = []
    for line in lines:
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short (a killed grade): skip it
        if isinstance(row, dict):
            rows.append(row)
    return rows


def append_history(path: str | Path, entry: dict[str, Any]) -> Path:
    """Append one grade's line to the history file (created with its folder)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry, sort_keys=True) + "\n")
    return path


# ## The report's section ###################################################################

def _selection(row: dict[str, Any]) -> str:
    """``phase 2 quantization, task 2.4``: what one grade covered."""
    words = f"phase {row.get('phase', '?')}" + (f" {row['part']}" if row.get("part") else "")
    if row.get("task") is not None:
        words += f", task {row.get('phase', '?')}.{row['task']}"
    return words


def _report_link(row: dict[str, Any], out_dir: Path) -> str:
    folder = row.get("report_dir")
    if not folder:
        return DASH
    try:
        rel = Path(os.path.relpath(Path(folder) / "report.md", out_dir.resolve())).as_posix()
    except ValueError:  # another drive on Windows
        rel = Path(folder, "report.md").as_posix()
    return f"[{Path(folder).name}]({rel})"


def history_section(run: GradeRun, out_dir: str | Path, history: list[dict[str, Any]]) -> list[str]:
    """Markdown lines of the *History* section: the grades of ``run``'s submission, newest first.

    ``history`` is every line of the history file, this grade's included (oldest first).
    """
    out_dir = Path(out_dir)
    mine = [r for r in history if r.get("submission") == run.submission]
    if not mine:
        return []
    shown = list(reversed(mine))[:MAX_ROWS]
    lines = [f"Every grade of `{run.submission}` recorded in `{HISTORY_NAME}` beside this report's folder, "
             "newest first (this grade first).", "",
             "| time | graded | impl | profile | points | exit | report |",
             "|---|---|---|---|---|---|---|"]
    for row in shown:
        try:
            points = f"{fmt_points(float(row.get('score', 0)))} / {fmt_points(float(row.get('max', 0)))}"
        except (TypeError, ValueError):
            points = DASH
        profile = f"{row.get('profile', DASH)}" + (" (quick)" if row.get("quick") else "")
        cells = [row.get("time") or DASH, _selection(row), row.get("impl", DASH), profile, points,
                 str(row.get("exit", DASH)), _report_link(row, out_dir)]
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    if len(mine) > MAX_ROWS:
        lines += ["", f"({len(mine) - MAX_ROWS} older grades are in `{HISTORY_NAME}`.)"]
    return lines
