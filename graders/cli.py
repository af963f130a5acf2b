"""``python -m graders``: the grader's command line (``make grade`` / ``make release`` call it).

    python -m graders grade --phase 1 [--impl starter|reference] [--submission DIR]
                            [--profile cpu|cpu-vnni|cuda] [--quick] [--task N] [--out DIR]
    python -m graders release --dest DIR
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
    sub.add_parser("fingerprint", help="print this machine's fingerprint")
    args = p.parse_args(argv)
    try:
        if args.cmd == "grade":
            return _grade(args)
        if args.cmd == "release":
            return _release(args)
        print(json.dumps(fingerprint(), indent=2))
        return 0
    except (FileExistsError, ValueError, RuntimeError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
