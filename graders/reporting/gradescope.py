"""Gradescope's autograder results format, for instructors who grade in Gradescope containers.

Top level: ``score`` (the run's points; Gradescope uses it instead of summing the tests),
``execution_time`` (whole seconds), ``output`` (summary text), ``output_format``, ``visibility``,
``stdout_visibility`` and ``tests``. One test per criterion. Verdicts map to ``status`` as
pass -> "passed"; fail, inconclusive, error -> "failed"; skipped -> "passed" with ``max_score`` 0
and output "SKIPPED: <reason>", so a skip never counts against the learner.
The grader's harness copies this file to ``/autograder/results/results.json``.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from graders.records import CriterionResult, GradeRun
from graders.reporting._format import (
    EXIT_MEANINGS,
    INCONCLUSIVE_NOTE,
    atomic_write_text,
    fingerprint_line,
    fmt_target,
    fmt_value,
    json_safe,
    names_guide,
    totals_line,
    verdict_label,
)

__all__ = ["TOP_LEVEL_KEYS", "TEST_KEYS", "gradescope_dict", "write_gradescope_json"]

TOP_LEVEL_KEYS = ("score", "execution_time", "output", "output_format", "visibility",
                  "stdout_visibility", "tests")
TEST_KEYS = ("name", "number", "score", "max_score", "status", "output", "output_format", "tags",
             "visibility")


def _num(x: Any) -> float:
    """A finite float for Gradescope's numeric fields (bad values count as 0)."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return 0.0
    return v if math.isfinite(v) else 0.0


def _test_output(c: CriterionResult) -> str:
    if c.verdict == "skipped":
        return f"SKIPPED: {c.message or 'no reason given'}"
    lines = [
        f"{verdict_label(c.verdict)}: {c.metric or 'value'} {fmt_value(c.value, c.unit)} "
        f"(target {fmt_target(c)})",
    ]
    if c.message:
        lines.append(c.message)
    if c.hint:
        lines.append(f"Hint: {c.hint}")
    if c.guide and not names_guide(c.hint or "", c.guide):
        lines.append(f"Guide: {c.guide}")
    if c.verdict == "inconclusive":
        lines.append(INCONCLUSIVE_NOTE)
    if c.verdict == "error":
        lines.append("This is a grader error, not a problem with your code; tell your instructor.")
    return "\n".join(lines)


def _test(c: CriterionResult) -> dict[str, Any]:
    skipped = c.verdict == "skipped"
    tags = [f"task {c.task}"] + (["gpu"] if c.gpu else [])
    return {
        "name": f"{c.id}: {c.title}",
        "number": str(c.id),
        "score": 0.0 if skipped else _num(c.points),
        "max_score": 0.0 if skipped else _num(c.max_points),
        "status": "passed" if c.verdict in ("pass", "skipped") else "failed",
        "output": _test_output(c),
        "output_format": "text",
        "tags": tags,
        "visibility": "visible",
    }


def _summary(run: GradeRun) -> str:
    lines = [totals_line(run), f"Exit code {run.exit_code}: {EXIT_MEANINGS.get(run.exit_code, '')}."]
    if run.grader_errors:
        lines.append("Grader errors (exit 2):")
        lines += [f"- {e}" for e in run.grader_errors]
    if any(c.verdict == "inconclusive" for c in run.criteria):
        lines.append(INCONCLUSIVE_NOTE)
    lines.append(fingerprint_line(run.fingerprint))
    return "\n".join(lines)


def gradescope_dict(run: GradeRun) -> dict[str, Any]:
    """The Gradescope results object for ``run`` (strictly JSON-safe)."""
    return json_safe({
        "score": _num(run.points),
        "execution_time": int(round(_num(run.duration_s))),
        "output": _summary(run),
        "output_format": "text",
        "visibility": "visible",
        "stdout_visibility": "visible",
        "tests": [_test(c) for c in run.criteria],
    })


def write_gradescope_json(run: GradeRun, path: str | os.PathLike) -> Path:
    """Write ``run`` in Gradescope's results format to ``path`` (parents created, atomic replace).

    Returns:
        The path written.
    """
    text = json.dumps(gradescope_dict(run), indent=2, ensure_ascii=False, allow_nan=False)
    return atomic_write_text(path, text + "\n")
