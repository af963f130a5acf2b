"""The console table a learner reads after ``make grade``: plain text, no colours, no dependencies.

Layout, top to bottom: the criteria table, "What to do next" (every criterion not passed or
skipped, and every pass short of full marks, in table order, with its message and hint or how to
reach full marks), "Skipped" (reasons), grader errors, the totals line, the exit-code meaning and a
one-line machine summary.

Nothing is cut mid-word: a table cell too long for its column wraps onto continuation lines, and
messages wrap at the line width (a message longer than ``_MAX_TEXT`` ends at a word, pointing at
report.md for the rest).
"""
from __future__ import annotations

from graders.records import CriterionResult, GradeRun
from graders.reporting._format import (
    DASH,
    EXIT_MEANINGS,
    INCONCLUSIVE_NOTE,
    fingerprint_line,
    fmt_points,
    fmt_target,
    fmt_value,
    is_partial,
    needs_next_step,
    next_step_text,
    totals_line,
    truncate,
    verdict_label,
    wrap_text,
)

__all__ = ["format_console", "table_rows", "TABLE_HEADERS"]

TABLE_HEADERS = ("id", "criterion", "value", "target", "verdict", "points")

#: Longest message or hint shown in the console; the full text is in report.md and results.json.
_MAX_TEXT = 600
_GAP = "  "
#: Narrowest line the console is laid out for (a terminal's usual 80 columns).
_MIN_WIDTH = 80
#: The criterion column never gets narrower than this (the id column gives way first).
_MIN_TITLE = 20
#: (column, narrowest width) given up, in order, when the table is wider than the line.
_SHRINK = ((0, 12), (3, 12), (1, 12), (2, 8))


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
    """Columns sized to their content (capped); the criterion column takes what is left, at least
    ``_MIN_TITLE``; when even that does not fit, the id, target, criterion and value columns give way in
    that order (their cells wrap; ids at the dots)."""
    caps = {0: 36, 2: 16, 3: 30, 4: 12, 5: 11}
    widths = [len(h) for h in TABLE_HEADERS]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    for i, cap in caps.items():
        widths[i] = min(widths[i], cap)
    gaps = len(_GAP) * (len(TABLE_HEADERS) - 1)
    fixed = sum(w for i, w in enumerate(widths) if i != 1) + gaps
    widths[1] = max(_MIN_TITLE, min(widths[1], width - fixed))
    for i, floor in _SHRINK:  # still too wide (a narrow terminal): these columns wrap, in this order
        over = sum(widths) + gaps - width
        if over <= 0:
            break
        widths[i] = max(min(floor, widths[i]), widths[i] - over)
    return widths


def _format_table(run: GradeRun, width: int) -> list[str]:
    rows = table_rows(run)
    widths = _column_widths(rows, width)

    def line(cells: tuple[str, ...]) -> list[str]:
        """One row; a cell too long for its column wraps onto continuation lines instead of being cut."""
        wrapped = [wrap_text(cell, w) for cell, w in zip(cells, widths)]
        out = []
        for k in range(max(len(w) for w in wrapped)):
            parts = []
            for i, (cell_lines, w) in enumerate(zip(wrapped, widths)):
                cell = cell_lines[k] if k < len(cell_lines) else ""
                # numbers read best right-aligned; text left-aligned
                parts.append(cell.rjust(w) if i in (2, 5) else cell.ljust(w))
            out.append(_GAP.join(parts).rstrip())
        return out

    lines = line(TABLE_HEADERS) + [_GAP.join("-" * w for w in widths)]
    for r in rows:
        lines += line(r)
    if not rows:
        lines.append("(no criteria were graded)")
    return lines


def _wrapped(label: str, text: str, width: int, indent: str = "    ") -> list[str]:
    """``label`` + ``text`` wrapped at ``width`` under ``indent`` (continuations 2 further in); a text
    over ``_MAX_TEXT`` characters ends at a word and says where the rest is."""
    text = " ".join(str(text or "").split())
    if not text:
        return []
    if len(text) > _MAX_TEXT:
        text = truncate(text, _MAX_TEXT) + " (full text in report.md)"
    body = wrap_text(f"{label}{text}", max(20, width - len(indent) - 2))
    return [indent + body[0]] + [indent + "  " + more for more in body[1:]]


def _next_steps(todo: list[CriterionResult], width: int) -> list[str]:
    lines = ["", "What to do next"]
    for c in todo:
        verdict = verdict_label(c.verdict)
        if is_partial(c):
            verdict += f" {fmt_points(c.points)}/{fmt_points(c.max_points)}"
        lines += _wrapped("", f"- {c.id} [{verdict}] {c.title}", width, indent="")
        lines += _wrapped("", f"measured {fmt_value(c.value, c.unit)}, target {fmt_target(c)}",
                          width)
        lines += _wrapped("", c.message, width)
        label = "to reach full marks: " if is_partial(c) else "hint: "
        lines += _wrapped(label, next_step_text(c), width)
    return lines


def format_console(run: GradeRun, *, width: int = 110) -> str:
    """The whole console report for ``run`` as one string (ends with a newline).

    Args:
        run: the finished grade.
        width: target line width in characters (at least 80); longer cells and messages wrap to fit.
    Returns:
        Plain text: table, next steps, skipped reasons, grader errors, totals and machine lines.
    """
    width = max(_MIN_WIDTH, int(width))
    lines = _format_table(run, width)

    todo = [c for c in run.criteria if needs_next_step(c)]
    if todo:
        lines += _next_steps(todo, width)

    skipped = [c for c in run.criteria if c.verdict == "skipped"]
    if skipped:
        lines += ["", "Skipped"]
        for c in skipped:
            lines += _wrapped("", f"- {c.id}: {c.message or 'no reason given'}", width, indent="")

    if run.flags:
        lines += ["", "Flags (what your code did that the grader watches for; tampered = no credit for that criterion)"]
        for f in run.flags[:20]:
            where = f" [{f['where']}]" if f.get("where") else ""
            crit = f" ({f['criterion']})" if f.get("criterion") else ""
            lines += _wrapped("", f"- {f['severity'].upper()}{crit}: {f['what']}{where}", width, indent="  ")
        if len(run.flags) > 20:
            lines.append(f"- ... {len(run.flags) - 20} more in results.json")

    if run.grader_errors:
        lines += ["", "Grader errors (exit 2)"]
        for err in run.grader_errors:
            lines += _wrapped("- ", str(err), width, indent="")

    if any(c.verdict == "inconclusive" for c in run.criteria):
        lines.append("")
        lines += wrap_text(INCONCLUSIVE_NOTE, width)

    code = run.exit_code
    lines += [
        "",
        totals_line(run),
        f"Exit code {code}: {EXIT_MEANINGS.get(code, DASH)}.",
    ]
    machine = wrap_text(fingerprint_line(run.fingerprint), width - 2)
    lines += machine[:1] + ["  " + more for more in machine[1:]]
    return "\n".join(lines) + "\n"
