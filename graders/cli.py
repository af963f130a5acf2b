"""``python -m graders``: the grader's command line (``make grade`` / ``make release`` call it).

    python -m graders grade --phase 2 [--part quantization] [--task N] [--impl starter|reference]
                            [--submission DIR] [--profile cpu|cpu-vnni|cuda] [--quick] [--out DIR]
    python -m graders release --dest DIR
    python -m graders gradescope --phase 1 [--part P] [--dest FILE.zip]   a Gradescope autograder zip (no reference)
    python -m graders batch --phase 1 [--part P] --submissions DIR [--out DIR] [--quick]
    python -m graders stability --phase 1 [--part P] [--times 5] [--impl reference] [--quick] [--neighbour N]
    python -m graders starters [--check]     write (or check) every starter/ from its reference/
    python -m graders outcomes [--check]     write (or check) the tables of every EXPECTED_OUTCOMES.md
    python -m graders fingerprint

Exit codes of ``grade``: 0 every required criterion passed, 1 some failed or stayed inconclusive,
2 the grader itself could not run.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from contextlib import nullcontext
from pathlib import Path

from .course import REPO_ROOT, CourseError, load_course, phase as course_phase
from .neighbour import busy_neighbour
from .profiles import PROFILES, fingerprint

__all__ = ["main"]


def _default_out(phase: int, impl: str, submission: str | None, part: str | None = None,
                 task: int | None = None) -> Path:
    """``grades/phase2-quantization-task4-starter-this-copy``: one folder per selection, so a task's
    report never overwrites another's."""
    tag = Path(submission).resolve().name if submission else "this-copy"
    scope = "".join([f"-{part}" if part else "", f"-task{task}" if task is not None else ""])
    return REPO_ROOT / "grades" / f"phase{phase}{scope}-{impl}-{tag}"


def _scope(args) -> str:
    """``phase 2, part quantization, task 2.4``: what a command is about to grade."""
    ph = course_phase(args.phase)
    words = [f"phase {args.phase} ({ph.folder})"]
    if getattr(args, "part", None):
        words.append(f"part {args.part}")
    if getattr(args, "task", None) is not None:
        words.append(f"task {args.phase}.{args.task}")
    return ", ".join(words)


def _check_selection(args) -> None:
    """Refuse an unknown part or task before anything runs (raises CourseError: exit 2, one line)."""
    ph = course_phase(args.phase)
    part = ph.part(args.part) if args.part is not None else None
    if getattr(args, "task", None) is not None:
        owner = ph.part_of_task(args.task)
        if part is not None and owner != part:
            raise CourseError(f"task {args.phase}.{args.task} belongs to part {owner.name}, not {part.name}")
    if getattr(args, "criterion", None):
        from .outcomes import load_outcomes

        declared = load_outcomes(args.phase).criteria
        for cid in args.criterion:
            spec = declared.get(cid)
            if spec is None:
                raise CourseError(f"phase {args.phase} has no criterion {cid!r}; its criteria: {', '.join(declared)}")
            if part is not None and spec.part != part.name:
                raise CourseError(f"{cid} belongs to part {spec.part}, not {part.name}")
            if args.task is not None and spec.task != args.task:
                raise CourseError(f"{cid} belongs to task {args.phase}.{spec.task}, not {args.phase}.{args.task}")


def _check_child_user(user: str | None) -> None:
    """``--child-user`` needs root (to switch user) and a user that exists; else a CourseError (exit 2, one line)."""
    if not user:
        return
    import pwd

    if os.geteuid() != 0:
        raise CourseError(f"--child-user {user} needs the grader to run as root (it runs as uid {os.geteuid()})")
    try:
        pwd.getpwnam(user)
    except KeyError:
        raise CourseError(f"--child-user: no user named {user!r} on this machine") from None


def _missing_reference(args) -> str | None:
    """Why ``--impl reference`` cannot run here (the copy has no reference solution), or None.

    The learner copy (``make release``) has no ``reference/`` package: grading it would only fail every
    criterion, so the CLI says so in one line and exits 2 instead.
    """
    if args.impl != "reference":
        return None
    ph = course_phase(args.phase)
    if getattr(args, "task", None) is not None:
        parts = [ph.part_of_task(args.task)]
    elif getattr(args, "part", None) is not None:
        parts = [ph.part(args.part)]
    else:
        parts = [p for p in ph.parts if not p.planned]
    root = Path(args.submission).resolve() if getattr(args, "submission", None) else REPO_ROOT
    missing = [p for p in parts if not (root / p.folder / "reference" / "__init__.py").is_file()]
    if not missing:
        return None
    if getattr(args, "submission", None):
        return f"{root} has no reference solution ({missing[0].folder}/reference/); grade its starter (the default)"
    return "the learner copy has no reference solution; grade your starter (the default): " \
           f"make grade PHASE={args.phase}"


def _grade(args) -> int:
    from .reporting import format_console, write_all
    from .reporting.history import append_history, history_entry, history_file, read_history
    from .runner import grade_phase

    _check_selection(args)
    _check_child_user(args.child_user)
    if (why := _missing_reference(args)) is not None:
        print(f"error: {why}", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else _default_out(args.phase, args.impl, args.submission, args.part, args.task)
    if args.criterion and not args.out:   # a report of its own: never overwrite the whole phase's
        out = out.with_name(out.name + "-" + "-".join(c.replace(".", "_") for c in args.criterion))
    print(f"Grading {_scope(args)}, {args.impl}"
          f"{' from ' + args.submission if args.submission else ''}{' [quick]' if args.quick else ''}...",
          flush=True)
    run = grade_phase(args.phase, part=args.part, impl=args.impl,
                      submission=Path(args.submission) if args.submission else None,
                      profile=args.profile, quick=args.quick, task=args.task,
                      criteria=tuple(args.criterion), out=out, child_user=args.child_user,
                      log=lambda s: print(s, flush=True))
    history = history_file(out)
    entry = history_entry(run, out)
    try:
        paths = write_all(run, out, history=[*read_history(history), entry])
        append_history(history, entry)
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

    _check_selection(args)
    if (why := _missing_reference(args)) is not None:
        print(f"error: {why}", file=sys.stderr)
        return 2
    runs = []
    scope = "".join([f"-{args.part}" if args.part else "", f"-task{args.task}" if args.task is not None else "",
                     *(f"-{c.replace('.', '_')}" for c in args.criterion)])
    root = REPO_ROOT / "grades" / f"stability-phase{args.phase}{scope}-{args.impl}{'-loaded' if args.neighbour else ''}"
    with busy_neighbour(args.neighbour) if args.neighbour else nullcontext():
        if args.neighbour:
            print(f"with {args.neighbour} busy neighbour process(es) on the same cores", flush=True)
        for i in range(args.times):
            out = root / f"run{i + 1}"
            run = grade_phase(args.phase, part=args.part, impl=args.impl, quick=args.quick, profile=args.profile,
                              task=args.task, criteria=tuple(args.criterion), out=out, log=lambda s: None)
            write_all(run, out)
            runs.append(run)
            print(f"run {i + 1}/{args.times}: {run.points:g}/{run.max_points:g} points, exit {run.exit_code}",
                  flush=True)
    return _stability_table(runs, root)


def _stability_table(runs, root: Path) -> int:
    """Print each criterion's verdict per run, flag flips; exit 0 only with no fail, no error, no flip."""
    ids = [c.id for c in runs[0].criteria]
    width = max([len("criterion"), *(len(c) for c in ids)]) + 2
    print(f"\n{'criterion':<{width}}" + "".join(f"{'run ' + str(i + 1):>17}" for i in range(len(runs))))
    flips = fails = undecided = 0
    for cid in ids:
        cells = [next((f"{c.verdict} {c.points:g}" for c in r.criteria if c.id == cid), "missing") for r in runs]
        verdicts = [cell.split()[0] for cell in cells]
        flips += len(set(verdicts)) > 1
        fails += sum(v in ("fail", "error", "missing") for v in verdicts)
        undecided += verdicts.count("inconclusive")
        print(f"{cid:<{width}}" + "".join(f"{cell:>17}" for cell in cells)
              + ("" if len(set(verdicts)) == 1 else "   <- differs"))
    totals = [r.points for r in runs]
    print(f"\nreports: {root}/run*/report.md")
    print(f"{len(runs)} grades: {fails} fail(s) or error(s), {undecided} inconclusive verdict(s), {flips} criterion(s) "
          f"changed verdict; totals {min(totals):g}..{max(totals):g} of {runs[0].max_points:g}")
    print("same verdicts in every run" if not flips else "verdicts differ between runs")
    return 0 if not flips and not fails else 1


def _batch(args) -> int:
    from .gradebook import grade_folder

    _check_selection(args)
    out = Path(args.out) if args.out else REPO_ROOT / "gradebook" / (
        f"phase{args.phase}" + (f"-{args.part}" if args.part else ""))
    book = grade_folder(Path(args.submissions), args.phase, out, part=args.part, quick=args.quick, task=args.task,
                        profile=args.profile, criteria=tuple(args.criterion))
    print(f"Gradebook: {book.csv}, summary: {book.summary} (reports per submission beside them)")
    if not book.ok:
        print(f"could not grade {len(book.ungradeable)} submission(s): {', '.join(book.ungradeable)} "
              f"(see their folders under {out})", file=sys.stderr)
        return 1
    return 0


def _release(args) -> int:
    from .release import write_release

    files = write_release(Path(args.dest))
    print(f"Wrote the learner copy ({len(files)} files) to {Path(args.dest).resolve()}; "
          f"no reference solution in it.")
    return 0


def _gradescope(args) -> int:
    from .autograder import write_bundle

    _check_selection(args)
    dest = write_bundle(args.phase, Path(args.dest) if args.dest else None, part=args.part)
    print(f"Wrote the Gradescope autograder for {_scope(args)} to {dest.resolve()}; no reference solution in it.\n"
          "Upload it in Gradescope (Programming Assignment > Configure Autograder); see graders/README.md, 'Gradescope'.")
    return 0


def _generated(args, what: str) -> int:
    """``starters`` / ``outcomes``: regenerate, or with --check list what regenerating would change."""
    if what == "starters":
        from .starters import stale_starters as stale, write_starters as write
    else:
        from .outcomes import stale_outcomes as stale, write_outcomes as write
    if args.check:
        problems = stale()
        for line in problems:
            print(line)
        print(f"{what}: {'out of date: run make ' + what if problems else 'up to date'}")
        return 1 if problems else 0
    changed = write()
    for f in changed:
        print(f"wrote {f}")
    print(f"{what}: {len(changed)} file(s) regenerated")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m graders", description="Inference Lab graders")
    sub = p.add_subparsers(dest="cmd", required=True)
    phases = sorted(load_course())
    g = sub.add_parser("grade", help="grade one phase (or one part, or one task)")
    g.add_argument("--phase", type=int, required=True, choices=phases)
    g.add_argument("--part", default=None, help="grade one part of the phase (e.g. quantization)")
    g.add_argument("--impl", default="starter", choices=("starter", "reference"))
    g.add_argument("--submission", default=None, help="another copy of the repo (a learner's) to grade")
    g.add_argument("--profile", default=None, choices=PROFILES, help="override the detected hardware profile")
    g.add_argument("--quick", action="store_true", help="fewer repeats (for CI and quick checks)")
    g.add_argument("--task", type=int, default=None, help="grade only this task's criteria")
    g.add_argument("--criterion", action="append", default=[], metavar="ID",
                   help="grade only this criterion (repeatable), e.g. p3.batching.speedup")
    g.add_argument("--out", default=None, help="where reports go (default grades/phaseN-IMPL-...)")
    g.add_argument("--child-user", default=None, metavar="NAME",
                   help="run the grading process as this unprivileged user (the grader must run as root), "
                        "e.g. in a Gradescope container")
    r = sub.add_parser("release", help="write the learner copy (no reference solutions)")
    r.add_argument("--dest", required=True)
    gs = sub.add_parser("gradescope", help="write a Gradescope autograder zip for one phase (no reference solutions)")
    gs.add_argument("--phase", type=int, required=True, choices=phases)
    gs.add_argument("--part", default=None, help="only this part of the phase (default: every part)")
    gs.add_argument("--dest", default=None, help="the zip to write (default dist/gradescope-phaseN[-PART].zip)")
    b = sub.add_parser("batch", help="grade every submission in a folder into a gradebook")
    b.add_argument("--phase", type=int, required=True, choices=phases)
    b.add_argument("--part", default=None)
    b.add_argument("--submissions", required=True, help="a folder whose sub-folders are learners' copies")
    b.add_argument("--out", default=None, help="default gradebook/phaseN/")
    b.add_argument("--quick", action="store_true")
    b.add_argument("--task", type=int, default=None)
    b.add_argument("--criterion", action="append", default=[], metavar="ID", help="only this criterion (repeatable)")
    b.add_argument("--profile", default=None, choices=PROFILES)
    st = sub.add_parser("stability", help="grade N times in a row and compare the verdicts")
    st.add_argument("--neighbour", type=int, default=0, metavar="N",
                    help="run N busy CPU-bound processes on the same cores meanwhile (a noisy neighbour)")
    st.add_argument("--phase", type=int, required=True, choices=phases)
    st.add_argument("--part", default=None)
    st.add_argument("--impl", default="reference", choices=("starter", "reference"))
    st.add_argument("--times", type=int, default=5)
    st.add_argument("--task", type=int, default=None, help="only this task's criteria")
    st.add_argument("--criterion", action="append", default=[], metavar="ID", help="only this criterion (repeatable)")
    st.add_argument("--quick", action="store_true")
    st.add_argument("--profile", default=None, choices=PROFILES)
    for what, text in (("starters", "write every starter/ from its reference/ (solution markers)"),
                       ("outcomes", "write the tables of every EXPECTED_OUTCOMES.md from its blocks")):
        gen = sub.add_parser(what, help=text)
        gen.add_argument("--check", action="store_true", help="write nothing; exit 1 if anything is out of date")
    sub.add_parser("fingerprint", help="print this machine's fingerprint")
    args = p.parse_args(argv)
    try:
        if args.cmd == "grade":
            return _grade(args)
        if args.cmd == "release":
            return _release(args)
        if args.cmd == "gradescope":
            return _gradescope(args)
        if args.cmd == "batch":
            return _batch(args)
        if args.cmd == "stability":
            return _stability(args)
        if args.cmd in ("starters", "outcomes"):
            return _generated(args, args.cmd)
        print(json.dumps(fingerprint(), indent=2))
        return 0
    except (CourseError, FileExistsError, FileNotFoundError, ValueError, RuntimeError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
