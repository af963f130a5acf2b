"""Grade a folder of submissions into a gradebook (one CSV row per submission) and a one-page summary.

    python -m graders batch --phase 1 [--part P] --submissions DIR [--out DIR] [--quick] [--task N] [--criterion ID]

Every sub-folder of DIR that holds the phase's folder (for example ``alice/phase1_basics/``) is graded as
``--submission``; reports go to ``OUT/<name>/``. Whatever a submission does (it does not import, it hangs,
it tampers with the grader, the grader itself breaks on it), the batch goes on to the next one.

``OUT/gradebook.csv``, one row per submission: ``status`` (graded, or ungradeable when the grader could
not run on it), totals and verdict counts, ``tampered`` (criteria failed as tampered) and ``flags`` (what
the static scan and the run-time guards noticed), ``errors`` (why the grader or the import failed),
``zero_because`` (each failed criterion's reason in a few words), then two columns per criterion: its
points (empty when skipped, so a skip never reads as a 0) and its verdict.

``OUT/summary.md``: flagged submissions first, then the distribution of totals and, per criterion, how
many passed, failed, stayed inconclusive, were skipped or tampered with, and the mean points.

Returns (:func:`grade_folder`) the path of the CSV and whether every submission could be graded; the CLI
exits 1 when one could not.
"""
from __future__ import annotations

import csv
import statistics
import traceback
from dataclasses import dataclass
from pathlib import Path

from .course import phase as course_phase
from .outcomes import load_outcomes
from .records import GradeRun

__all__ = ["find_submissions", "grade_folder", "Gradebook"]


def find_submissions(folder: Path, phase: int) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder of submissions")
    return sorted(p for p in folder.iterdir() if (p / course_phase(phase).folder).is_dir())


@dataclass
class Gradebook:
    """What :func:`grade_folder` wrote: the CSV, the summary, and the submissions it could not grade."""

    csv: Path
    summary: Path
    ungradeable: list[str]

    @property
    def ok(self) -> bool:
        return not self.ungradeable


def _import_error(run: GradeRun) -> str:
    for c in run.criteria:
        if "could not import your code" in c.message or c.message.startswith("importing your code"):
            return c.message
    return ""


def _short(text: str, n: int = 90) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _row(name: str, run: GradeRun | None, crash: str, ids: list[str]) -> list:
    if run is None:
        return [name, "ungradeable", 0, 0, 2, 0, 0, 0, 0, 0, 0, _short(crash, 500), "", *[""] * (2 * len(ids))]
    count = {v: sum(c.verdict == v for c in run.criteria) for v in ("pass", "fail", "inconclusive", "skipped")}
    errors = " | ".join([*run.grader_errors, *([_import_error(run)] if _import_error(run) else [])])
    zero = " | ".join(f"{c.id}: {_short(c.tampered and 'TAMPERED ' + c.tampered or c.message)}"
                      for c in run.criteria if c.verdict in ("fail", "error") and c.points == 0)
    by_id = {c.id: c for c in run.criteria}
    cells: list = []
    for i in ids:
        c = by_id.get(i)
        if c is None:
            cells += ["", "not graded"]
        else:
            cells += ["" if c.verdict == "skipped" else c.points, "tampered" if c.tampered else c.verdict]
    status = "ungradeable" if run.exit_code == 2 else "graded"
    return [name, status, run.points, run.max_points, run.exit_code, count["pass"], count["fail"],
            count["inconclusive"], count["skipped"], sum(bool(c.tampered) for c in run.criteria), len(run.flags),
            _short(errors, 500), _short(zero, 800), *cells]


def _summary(phase: int, runs: dict[str, GradeRun | None], crashes: dict[str, str], ids: list[str]) -> str:
    lines = [f"# Phase {phase} gradebook summary", ""]
    graded = {n: r for n, r in runs.items() if r is not None}
    flagged = [n for n, r in graded.items() if r.flags or any(c.tampered for c in r.criteria)]
    ungradeable = [n for n, r in runs.items() if r is None or r.exit_code == 2]
    lines += [f"{len(runs)} submissions: {len(graded) - len(ungradeable) + sum(r is None for r in runs.values())} "
              f"graded, {len(ungradeable)} ungradeable, {len(flagged)} flagged.", ""]
    if flagged or ungradeable:
        lines += ["## Look at these first", "", "| submission | why |", "|---|---|"]
        for n in sorted(set(flagged) | set(ungradeable), key=lambda n: (n not in flagged, n)):
            r = runs[n]
            why = []
            if r is None:
                why.append(f"ungradeable: {_short(crashes.get(n, ''), 120)}")
            else:
                tam = [c.id for c in r.criteria if c.tampered]
                if tam:
                    why.append(f"tampered: {', '.join(tam)}")
                why += [f"{f['severity']}: {_short(f['what'], 80)}" for f in r.flags[:3]]
                if len(r.flags) > 3:
                    why.append(f"... {len(r.flags) - 3} more flags")
                if r.exit_code == 2:
                    why.append(f"ungradeable: {_short(' | '.join(r.grader_errors) or 'grader error', 120)}")
            lines.append(f"| {n} | {'; '.join(why).replace('|', '/')} |")
        lines.append("")
    totals = [r.points for r in graded.values()]
    if totals:
        top = max(r.max_points for r in graded.values())
        lines += ["## Totals", "", f"min {min(totals):g}, median {statistics.median(totals):g}, max {max(totals):g} "
                  f"of {top:g} points", ""]
        buckets = [0] * 5
        for t in totals:
            buckets[min(4, int(5 * t / top)) if top else 0] += 1
        lines += ["| points | submissions |", "|---|---|"]
        for i, n in enumerate(buckets):
            lo, hi = top * i / 5, top * (i + 1) / 5
            lines.append(f"| {lo:g}-{hi:g} | {'#' * n} {n} |")
        lines.append("")
    lines += ["## Per criterion", "", "| criterion | pass | fail | inconclusive | skipped | tampered | mean points |",
              "|---|---|---|---|---|---|---|"]
    for i in ids:
        cs = [c for r in graded.values() for c in r.criteria if c.id == i]
        n = {v: sum(c.verdict == v and not c.tampered for c in cs) for v in ("pass", "fail", "inconclusive", "skipped")}
        mean = statistics.fmean([c.points for c in cs]) if cs else 0.0
        lines.append(f"| `{i}` | {n['pass']} | {n['fail']} | {n['inconclusive']} | {n['skipped']} | "
                     f"{sum(bool(c.tampered) for c in cs)} | {mean:.2f} |")
    return "\n".join(lines) + "\n"


def grade_folder(folder: Path, phase: int, out: Path, *, part: str | None = None, quick: bool = False,
                 task: int | None = None, profile: str | None = None, criteria: tuple[str, ...] = (),
                 log=print) -> Gradebook:
    """Grade every submission in ``folder`` into ``out`` (gradebook.csv, summary.md, one report folder each);
    ``criteria``: only these criterion ids (as ``grade --criterion``)."""
    from .reporting import write_all
    from .runner import grade_phase

    subs = find_submissions(folder, phase)
    if not subs:
        raise FileNotFoundError(f"no sub-folder of {folder} holds {course_phase(phase).folder}/")
    ids = [c.id for c in load_outcomes(phase).select(part=part, task=task) if not criteria or c.id in criteria]
    out.mkdir(parents=True, exist_ok=True)
    book = out / "gradebook.csv"
    runs: dict[str, GradeRun | None] = {}
    crashes: dict[str, str] = {}
    with open(book, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["submission", "status", "points", "max_points", "exit_code", "passed", "failed", "inconclusive",
                    "skipped", "tampered", "flags", "errors", "zero_because",
                    *[col for i in ids for col in (i, f"{i}:verdict")]])
        for sub in subs:
            log(f"== {sub.name}")
            run: GradeRun | None = None
            try:
                run = grade_phase(phase, part=part, submission=sub, quick=quick, task=task, profile=profile,
                                  criteria=tuple(criteria), out=out / sub.name, log=lambda s: None)
                write_all(run, out / sub.name)
            except Exception as e:  # noqa: BLE001 - one submission breaking the grader must not stop the class
                crashes[sub.name] = f"{type(e).__name__}: {e}"
                (out / sub.name).mkdir(parents=True, exist_ok=True)
                (out / sub.name / "grader-crash.txt").write_text(traceback.format_exc(), encoding="utf-8")
                run = None
            runs[sub.name] = run
            w.writerow(_row(sub.name, run, crashes.get(sub.name, ""), ids))
            f.flush()
            if run is None:
                log(f"   UNGRADEABLE: {crashes[sub.name]}")
            else:
                extra = f", {len(run.flags)} flag(s)" if run.flags else ""
                log(f"   {run.points:g}/{run.max_points:g} points, exit {run.exit_code}{extra}")
    summary = out / "summary.md"
    summary.write_text(_summary(phase, runs, crashes, ids), encoding="utf-8")
    ungradeable = [n for n, r in runs.items() if r is None or r.exit_code == 2]
    return Gradebook(csv=book, summary=summary, ungradeable=ungradeable)
