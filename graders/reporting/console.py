"""The console table a learner reads after ``make grade``: plain text, no colours, no dependencies.

Layout, top to bottom: the criteria table, "What to do next" (every criterion not passed or
skipped, in table order, with its message and hint), "Skipped" (reasons), grader errors, the
totals line, the exit-code meaning and a one-line machine summary.
"""
from __future__ import annotations

import textwrap

from graders.records import CriterionResult, GradeRun
from graders.reporting._format import (
    DASH,
    EXIT_MEANINGS,
    INCONCLUSIVE_NOTE,
    fingerprint_line,
    fmt_points,
    fmt_target,
    fmt_value,
    names_guide,
    totals_line,
    truncate,
    verdict_label,
)

__all__ = ["format_console", "table_rows", "TABLE_HEADERS"]

TABLE_HEADERS = ("id", "criterion", "value", "target", "verdict", "points")

#: Longest message or hint shown in the console; the full text is in report.md and results.json.
_MAX_TEXT = 600
_GAP = "  "


def table_rows(run: GradeRun) -> list[tuple[str, str, str, str, str, str]]:
    """One row of display strings per criterion, in ``TABLE_HEADERS`` order (titles untruncated)."""
    return [
        (
            str(c.id),
            str(c.title),
            fmt_value(c.value, c.unit),
            fmt_target(c),
            verdict_label(c.verdict),
            f"{fmt_points(c.points)}/{fmt_points(c.max_points)}",
        )
        for c in run.criteria
    ]


def _column_widths(rows: list[tuple[str, ...]], width: int) -> list[int]:
    """Fixed columns sized to their content (capped); the criterion column takes what is left."""
    caps = {0: 28, 2: 16, 3: 30, 4: 12, 5: 11}
    widths = [len(h) for h in TABLE_HEADERS]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    for i, cap in caps.items():
        widths[i] = min(widths[i], cap)
    fixed = sum(w for i, w in enumerate(widths) if i != 1) + len(_GAP) * (len(TABLE_HEADERS) - 1)
    widths[1] = max(12, min(widths[1], width - fixed))
    return widths


def _format_table(run: GradeRun, width: int) -> list[str]:
    rows = table_rows(run)
    widths = _column_widths(rows, width)

    def line(cells: tuple[str, ...]) -> list[str]:
        """One row; the criterion title wraps onto continuation lines instead of being cut."""
        title = textwrap.wrap(cells[1], widths[1]) or [""]
        out = []
        for i, (cell, w) in enumerate(zip(cells, widths)):
            cell = title[0] if i == 1 else truncate(cell, w)
            # numbers read best right-aligned; text left-aligned
            out.append(cell.rjust(w) if i in (2, 5) else cell.ljust(w))
        pad = " " * (widths[0] + len(_GAP))
        return [_GAP.join(out).rstrip()] + [pad + more for more in title[1:]]

    lines = line(TABLE_HEADERS) + [_GAP.join("-" * w for w in widths)]
    for r in rows:
        lines += line(r)
    if not rows:
        lines.append("(no criteria were graded)")
    return lines


def _wrapped(label: str, text: str, width: int, indent: str = "    ") -> list[str]:
    text = truncate(text, _MAX_TEXT)
    if not text:
        return []
    return textwrap.wrap(f"{label}{text}", width=max(40, width), initial_indent=indent,
                         subsequent_indent=indent + "  ", break_long_words=True)


def _hint_text(c: CriterionResult) -> str:
    """The hint, with the guide section appended unless the hint already names it."""
    hint = (c.hint or "").strip()
    if c.guide and not names_guide(hint, c.guide):
        hint = f"{hint} (guide: {c.guide})" if hint else f"see {c.guide}"
    return hint


def _next_steps(todo: list[CriterionResult], width: int) -> list[str]:
    lines = ["", "What to do next"]
    for c in todo:
        lines.append(truncate(f"- {c.id} [{verdict_label(c.verdict)}] {c.title}", width))
        lines += _wrapped("", f"measured {fmt_value(c.value, c.unit)}, target {fmt_target(c)}",
                          width)
        lines += _wrapped("", c.message, width)
        lines += _wrapped("hint: ", _hint_text(c), width)
    return lines


def format_console(run: GradeRun, *, width: int = 110) -> str:
    """The whole console report for ``run`` as one string (ends with a newline).

    Args:
        run: the finished grade.
        width: target line width in characters; the criterion titles are truncated to fit.
    Returns:
        Plain text: table, next steps, skipped reasons, grader errors, totals and machine lines.
    """
    width = max(60, int(width))
    lines = _format_table(run, width)

    todo = [c for c in run.criteria if c.verdict not in ("pass", "skipped")]
    if todo:
        lines += _next_steps(todo, width)

    skipped = [c for c in run.criteria if c.verdict == "skipped"]
    if skipped:
        lines += ["", "Skipped"]
        for c in skipped:
            lines.append(truncate(f"- {c.id}: {c.message or 'no reason given'}", width))

    if run.grader_errors:
        lines += ["", "Grader errors (exit 2)"]
        for err in run.grader_errors:
            lines += _wrapped("- ", str(err), width, indent="")

    if any(c.verdict == "inconclusive" for c in run.criteria):
        lines.append("")
        lines += textwrap.wrap(INCONCLUSIVE_NOTE, width=width)

    code = run.exit_code
    lines += [
        "",
        totals_line(run),
        f"Exit code {code}: {EXIT_MEANINGS.get(code, DASH)}.",
    ]
    lines += textwrap.wrap(fingerprint_line(run.fingerprint), width=width, subsequent_indent="  ")
    return "\n".join(lines) + "\n"
