"""Every output of a grade, from one :class:`graders.records.GradeRun`.

* :func:`format_console`: the plain-text table printed after ``make grade``.
* :func:`write_results_json` / :func:`read_results_json`: the course's results.json (round trip).
* :func:`write_gradescope_json`: Gradescope's autograder results format.
* :func:`write_markdown_report`: report.md with PNG plots in ``plots/``.
* :func:`write_all`: all three files into one folder.
* :mod:`graders.reporting.history`: ``history.jsonl`` (one line per grade) and report.md's History.
"""
from __future__ import annotations

from pathlib import Path

from graders.records import GradeRun
from graders.reporting.console import format_console
from graders.reporting.gradescope import write_gradescope_json
from graders.reporting.markdown import write_markdown_report
from graders.reporting.results_json import read_results_json, write_results_json

__all__ = [
    "OUTPUT_NAMES",
    "format_console",
    "read_results_json",
    "write_all",
    "write_gradescope_json",
    "write_markdown_report",
    "write_results_json",
]

#: Key in :func:`write_all`'s answer -> file name inside ``out_dir``.
OUTPUT_NAMES = {
    "results": "results.json",
    "gradescope": "gradescope_results.json",
    "report": "report.md",
}


def write_all(run: GradeRun, out_dir: str | Path, *,
              repo_root: str | Path | None = None, history: list[dict] | None = None) -> dict[str, Path]:
    """Write results.json, gradescope_results.json and report.md (+ ``plots/``) into ``out_dir``.

    Args:
        run: the finished grade.
        out_dir: destination folder (created with its parents).
        repo_root: where guide paths resolve for report.md links (default: this checkout).
        history: the grades root's history lines (this grade's included) for report.md's History
            section (``graders.reporting.history``); None leaves the section out.
    Returns:
        ``{"results": ..., "gradescope": ..., "report": ...}``: the paths written.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return {
        "results": write_results_json(run, out_dir / OUTPUT_NAMES["results"]),
        "gradescope": write_gradescope_json(run, out_dir / OUTPUT_NAMES["gradescope"]),
        "report": write_markdown_report(run, out_dir, repo_root=repo_root, history=history),
    }
