"""``python -m graders``: the grader's command line (``make grade`` / ``make release`` call it).

    python -m graders grade --phase 1 [--impl starter|reference] [--submission DIR]
                            [--profile cpu|cpu-vnni|cuda] [--quick] [--task N] [--out DIR]
    python -m graders release --dest DIR
    python -m graders batch --phase 1 --submissions DIR [--out DIR] [--quick]
    python -m graders stability --phase 1 [--times 5] [--impl reference] [--quick]
    python -m graders fingerprint

Exit codes of ``grade``: 0 every required criterion passed, 1 some failed or stayed inconclusive,
2 the grader itself could not run.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .outcomes import PHASE_DIRS, REPO_ROOT
from .profiles import PROFILES, fingerprint

__all__ = ["main"]


def _default_out(phase: int, impl: str, submission: str | None) -> Path:
    tag = Path(submission).resolve().name if submission else "this-copy"
    return REPO_ROOT / "grades" / f"phase{phase}-{impl}-{tag}"


def _grade(args) -> int:
    from .reporting import format_console, write_all
    from .runner import grade_phase

    out = Path(args.out) if args.out else _default_out(args.phase, args.impl, args.submission)
    print(f"Grading phase {args.phase} ({PHASE_DIRS.get(args.phase, '?')}/{args.impl})"
          f"{' from ' + args.submission if args.submission else ''}{' [quick]' if args.quick else ''}...",
          flush=True)
    run = grade_phase(args.phase, impl=args.impl, submission=Path(args.submission) if args.submission else None,
                      profile=args.profile, quick=args.quick, task=args.task, out=out,
                      log=lambda s: print(s, flush=True))
    try:
        paths = write_all(run, out)
    except Exception as e:  # noqa: BLE001 - a report that cannot be written is a grader failure
        print(f"grader error: could not write the reports: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    print()
    print(format_console(run))
    print(f"\nReports: {paths.get('report', out)}  (results.json, gradescope_results.json, plots/)")
    return run.exit_code


def _stability(args) -> int:
    """Grade the same code N times in a row; exit 0 only when every run gives the same verdicts."""
    from .reporting import write_all
    from .runner import grade_phase

    runs = []
    for i in range(args.times):
        out = REPO_ROOT / "grades" / f"stability-phase{args.phase}-{args.impl}" / f"run{i + 1}"
        run = grade_phase(args.phase, impl=args.impl, quick=args.quick, profile=args.profile, out=out,
                          log=lambda s: None)
        write_all(run, out)
        runs.append(run)
        print(f"run {i + 1}/{args.times}: {run.points:g}/{run.max_points:g} points, exit {run.exit_code}", flush=True)
    ids = [c.id for c in runs[0].criteria]
    print(f"\n{'criterion':<24}" + "".join(f"{'run ' + str(i + 1):>17}" for i in range(len(runs))))
    same = True
    for cid in ids:
        cells = [next((f"{c.verdict} {c.points:g}" for c in r.criteria if c.id == cid), "missing") for r in runs]
        verdicts = {cell.split()[0] for cell in cells}
        same &= len(verdicts) == 1
        print(f"{cid:<24}" + "".join(f"{cell:>17}" for cell in cells) + ("" if len(verdicts) == 1 else "   <- differs"))
    print(f"\nreports: {out.parent}/run*/report.md")
    print("same verdicts in every run" if same else "verdicts differ between runs")
    return 0 if same else 1


def _batch(args) -> int:
    from .gradebook import grade_folder

    out = Path(args.out) if args.out else REPO_ROOT / "gradebook" / f"phase{args.phase}"
    book = grade_folder(Path(args.submissions), args.phase, out, quick=args.quick, task=args.task,
                        profile=args.profile)
    print(f"Gradebook: {book} (reports per submission beside it)")
    return 0


def _release(args) -> int:
    from .release import write_release

    files = write_release(Path(args.dest))
    print(f"Wrote the learner copy ({len(files)} files) to {Path(args.dest).resolve()}; "
          f"no reference solution in it.")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m graders", description="Inference Lab graders")
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("grade", help="grade one phase")
    g.add_argument("--phase", type=int, required=True, choices=sorted(PHASE_DIRS))
    g.add_argument("--impl", default="starter", choices=("starter", "reference"))
    g.add_argument("--submission", default=None, help="another copy of the repo (a learner's) to grade")
    g.add_argument("--profile", default=None, choices=PROFILES, help="override the detected hardware profile")
    g.add_argument("--quick", action="store_true", help="fewer repeats (for CI and quick checks)")
    g.add_argument("--task", type=int, default=None, help="grade only this task's criteria")
    g.add_argument("--out", default=None, help="where reports go (default grades/phaseN-IMPL-...)")
    r = sub.add_parser("release", help="write the learner copy (no reference solutions)")
    r.add_argument("--dest", required=True)
    b = sub.add_parser("batch", help="grade every submission in a folder into a gradebook")
    b.add_argument("--phase", type=int, required=True, choices=sorted(PHASE_DIRS))
    b.add_argument("--submissions", required=True, help="a folder whose sub-folders are learners' copies")
    b.add_argument("--out", default=None, help="default gradebook/phaseN/")
    b.add_argument("--quick", action="store_true")
    b.add_argument("--task", type=int, default=None)
    b.add_argument("--profile", default=None, choices=PROFILES)
    st = sub.add_parser("stability", help="grade N times in a row and compare the verdicts")
    st.add_argument("--phase", type=int, required=True, choices=sorted(PHASE_DIRS))
    st.add_argument("--impl", default="reference", choices=("starter", "reference"))
    st.add_argument("--times", type=int, default=5)
    st.add_argument("--quick", action="store_true")
    st.add_argument("--profile", default=None, choices=PROFILES)
    sub.add_parser("fingerprint", help="print this machine's fingerprint")
    args = p.parse_args(argv)
    try:
        if args.cmd == "grade":
            return _grade(args)
        if args.cmd == "release":
            return _release(args)
        if args.cmd == "batch":
            return _batch(args)
        if args.cmd == "stability":
            return _stability(args)
        print(json.dumps(fingerprint(), indent=2))
        return 0
    except (FileExistsError, FileNotFoundError, ValueError, RuntimeError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
