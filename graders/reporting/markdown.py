"""``report.md``: the human report, with PNG plots in ``plots/`` beside it.

Sections: summary (points, verdict counts, exit code), machine fingerprint, the criteria table
(same columns as the console) with the points chart, what to do next (every criterion not passed,
and every pass short of full marks with how to reach them), the history of this copy's grades when
one is given (``graders.reporting.history``), one section per criterion (verdict, value against
target, message, hint, guide link, plot, key figures from ``details``), a glossary of every key
figure shown (``graders.reporting.glossary``), and, when any plot could not be drawn, the reason.
Plots never make the report fail.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from graders.records import CriterionResult, GradeRun
from graders.reporting._format import (
    DASH,
    EXIT_MEANINGS,
    INCONCLUSIVE_NOTE,
    atomic_write_text,
    count_verdicts,
    fingerprint_items,
    fmt_number,
    fmt_points,
    fmt_target,
    fmt_value,
    is_partial,
    needs_next_step,
    next_step_text,
    totals_line,
    verdict_label,
)
from graders.reporting.console import TABLE_HEADERS, table_rows
from graders.reporting.glossary import glossary_rows
from graders.reporting.history import history_section
from graders.reporting.plots import write_plots

__all__ = ["write_markdown_report", "guide_link", "key_figures"]

#: Longest message/hint kept in report.md (results.json keeps everything).
_MAX_TEXT = 4000
_MAX_FIGURES = 30
_MAX_LIST = 10
_DEFAULT_REPO_ROOT = Path(__file__).resolve().parents[2]


# ## Markdown helpers ########################################################################

def _cell(text: Any) -> str:
    """Text safe inside a table cell: one line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|") or " "


def _table(headers: tuple[str, ...] | list[str], rows: list[tuple[str, ...]]) -> list[str]:
    out = ["| " + " | ".join(_cell(h) for h in headers) + " |",
           "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return out


def _para(text: Any) -> str:
    s = str(text or "").strip()
    if len(s) <= _MAX_TEXT:
        return s
    head = s[:_MAX_TEXT]
    cut = max(head.rfind(" "), head.rfind("\n"))
    return (head[:cut] if cut > 0 else head).rstrip(" ,;:") + "… (cut; full text in results.json)"


def guide_link(guide: str, out_dir: str | Path, repo_root: str | Path | None = None) -> str:
    """``guide`` as a markdown link relative to ``out_dir``, or as inline code.

    ``guide`` is a repo-relative path with an optional anchor
    (``phase1_basics/IMPLEMENTATION_GUIDE.md#task-12-latency-measurement``). It becomes a link only
    when the file exists under ``repo_root`` (default: the checkout this package lives in).
    """
    if not guide:
        return DASH
    file_part, _, anchor = str(guide).partition("#")
    root = Path(repo_root) if repo_root is not None else _DEFAULT_REPO_ROOT
    target = root / file_part
    try:
        if file_part and target.is_file():
            rel = os.path.relpath(target.resolve(), Path(out_dir).resolve())
            rel = Path(rel).as_posix() + (f"#{anchor}" if anchor else "")
            return f"[{guide}]({rel})"
    except (OSError, ValueError):  # another drive on Windows, unreadable path
        pass
    return f"`{guide}`"


def _scalar_text(v: Any) -> str | None:
    """Display text for a scalar or a short list of scalars; None when not a key figure."""
    if v is None or isinstance(v, (bool, str)):
        return DASH if v is None else str(v)
    if isinstance(v, (int, float)):
        return fmt_number(v)
    if hasattr(v, "item") and getattr(v, "ndim", 1) == 0:  # numpy scalar
        return _scalar_text(v.item())
    if isinstance(v, (list, tuple)) and len(v) <= _MAX_LIST:
        parts = [_scalar_text(i) for i in v]
        if all(p is not None and not isinstance(i, (list, tuple, dict)) for p, i in zip(parts, v)):
            return "[" + ", ".join(parts) + "]"
    return None


#: ``details`` entries that are never key figures: raw samples and curves (plotted instead).
_NOT_FIGURES = ("samples", "curve", "picture")


def key_figures(details: Any, limit: int | None = _MAX_FIGURES) -> list[tuple[str, str]]:
    """The "figure | value" rows report.md shows for ``details``: scalar entries and short lists, one
    nested level flattened as ``parent.child``, raw samples left out; at most ``limit`` rows (None: all).

    Every figure name shown here needs an entry in :mod:`graders.reporting.glossary`.
    """
    if not isinstance(details, dict):
        return []
    rows: list[tuple[str, str]] = []
    for key, v in details.items():
        if key in _NOT_FIGURES:
            continue
        if isinstance(v, dict):
            for sub, sv in v.items():
                text = _scalar_text(sv)
                if text is not None:
                    rows.append((f"{key}.{sub}", text))
        else:
            text = _scalar_text(v)
            if text is not None:
                rows.append((str(key), text))
    return rows if limit is None else rows[:limit]


# ## Sections ################################################################################

def _summary(run: GradeRun) -> list[str]:
    counts = count_verdicts(run)
    code = run.exit_code
    lines = [
        f"**{fmt_points(run.points)} / {fmt_points(run.max_points)} points** {DASH} "
        f"exit code {code}: {EXIT_MEANINGS.get(code, DASH)}.",
        "",
        totals_line(run),
        "",
    ]
    lines += _table(["verdict", "count"], [(verdict_label(v), str(n)) for v, n in counts.items()])
    lines += [
        "",
        f"- Implementation: `{run.impl}`",
        f"- Submission: `{run.submission}`",
        f"- Profile: `{run.profile}`" + (" (quick mode: fewer repeats)" if run.quick else ""),
        f"- Started: {run.started_at or DASH}; took {fmt_number(run.duration_s)} s",
    ]
    if run.benchmark_json:
        lines.append(f"- pytest-benchmark data: `{run.benchmark_json}`")
    if counts.get("inconclusive"):
        lines += ["", f"> {INCONCLUSIVE_NOTE}"]
    if run.grader_errors:
        lines += ["", "### Grader errors (exit 2)", ""]
        lines += ["```text", *[str(e) for e in run.grader_errors], "```"]
    return lines


def _criterion_section(c: CriterionResult, out_dir: Path, plot: Path | None,
                       repo_root: str | Path | None) -> list[str]:
    req = "required" if c.required else "optional"
    lines = [
        f"### `{c.id}` {DASH} {_cell(c.title)}",
        "",
        f"- **Verdict:** {verdict_label(c.verdict)} ({fmt_points(c.points)}/"
        f"{fmt_points(c.max_points)} points, {req}{', GPU' if c.gpu else ''})",
        f"- **Value:** {fmt_value(c.value, c.unit)}; **target:** {fmt_target(c)}",
        f"- **Metric:** `{c.metric or DASH}` (task {c.task}; checked in "
        f"{fmt_number(c.duration_s)} s)",
        f"- **Guide:** {guide_link(c.guide, out_dir, repo_root)}",
    ]
    if c.message:
        lines += ["", _para(c.message)]
    step = next_step_text(c)
    if step:
        label = "To reach full marks" if is_partial(c) else "Hint"
        lines += ["", f"**{label}:** {_para(step)}"]
    if plot is not None:
        rel = Path(os.path.relpath(plot, out_dir)).as_posix()
        what = next((alt for key, alt in (("curve", "curve"), ("picture", "picture")) if isinstance(c.details, dict)
                     and key in c.details and "samples" not in c.details), "samples")
        lines += ["", f"![{what} for {c.id}]({rel})"]
    figures = key_figures(c.details)
    if figures:
        lines += ["", *_table(["figure", "value"], figures)]
    return lines + [""]


# ## Entry point #############################################################################

def write_markdown_report(run: GradeRun, out_dir: str | Path, *,
                          repo_root: str | Path | None = None, history: list[dict] | None = None) -> Path:
    """Write ``out_dir/report.md`` and its plots in ``out_dir/plots/``.

    Args:
        run: the finished grade.
        out_dir: folder for the report (created).
        repo_root: where guide paths are resolved for relative links (default: this checkout).
        history: every line of the grades root's history file, this grade's included; the report
            lists those of this submission, newest first (None: no history section).
    Returns:
        The path of report.md.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        plots, problems = write_plots(run, out_dir / "plots")
    except Exception as exc:  # noqa: BLE001 - plots never fail the grade
        plots, problems = {}, [f"all plots: {type(exc).__name__}: {exc}"]

    lines = [f"# Phase {run.phase} grade report", "", "## Summary", ""]
    lines += _summary(run)

    lines += ["", "## Machine", ""]
    items = fingerprint_items(run.fingerprint)
    lines += _table(["key", "value"], items) if items else ["(no fingerprint recorded)"]

    if run.flags:
        lines += ["", "## Flags", "", "What the submission did that the grader watches for. `tampered`: the criterion "
                  "named got no credit; `flag`: reported for a person to read, no points changed.", ""]
        lines += _table(["severity", "criterion", "what", "where"],
                        [(f["severity"], f.get("criterion") or DASH, f["what"], f.get("where") or DASH)
                         for f in run.flags])
    if run.protections:
        lines += ["", "## Protections", ""]
        lines += _table(["protection", "state"], sorted(run.protections.items()))

    lines += ["", "## Criteria", ""]
    if run.criteria:
        lines += _table(TABLE_HEADERS, table_rows(run))
    else:
        lines.append("(no criteria were graded)")
    if "points" in plots:
        lines += ["", "![points per criterion](plots/points.png)"]

    todo = [c for c in run.criteria if needs_next_step(c)]
    skipped = [c for c in run.criteria if c.verdict == "skipped"]
    if todo or skipped:
        lines += ["", "## What to do next", ""]
        for c in todo:
            verdict = verdict_label(c.verdict)
            if is_partial(c):
                verdict += f" {fmt_points(c.points)}/{fmt_points(c.max_points)}, to reach full marks"
            lines.append(f"- `{c.id}` **{verdict}**: {_cell(_para(next_step_text(c) or DASH))}")
        for c in skipped:
            lines.append(f"- `{c.id}` SKIPPED: {_cell(_para(c.message or 'no reason given'))}")

    progress = history_section(run, out_dir, history or [])
    if progress:
        lines += ["", "## History", "", *progress]

    if run.criteria:
        lines += ["", "## Criteria in detail", ""]
        for c in run.criteria:
            lines += _criterion_section(c, out_dir, plots.get(c.id), repo_root)

    shown = [name for c in run.criteria for name, _ in key_figures(c.details)]
    if shown:
        lines += ["", "## Glossary", "",
                  "What each figure in the tables above means (units in the sentence).", ""]
        lines += _table(["figure", "meaning"],
                        [(", ".join(f"`{n}`" for n in names), text) for names, text in glossary_rows(shown)])

    if problems:
        lines += ["", "## Plot problems", "",
                  "These plots could not be drawn; the grade is not affected.", ""]
        lines += [f"- {_cell(p)}" for p in problems]

    return atomic_write_text(out_dir / "report.md", "\n".join(lines).rstrip() + "\n")
