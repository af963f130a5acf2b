"""Run one phase's grader in a child process, enforce limits, and survive anything a submission does.

Each part of the phase is graded by its own child, ``python -m pytest graders/phaseN/<part> -p
graders.plugin ...`` (the learner's package differs per part); it streams typed events
(``graders.events``) to ``records.jsonl``. The parent (this module) watches it:

* a criterion running past its ``time_limit_s`` (hang, deadlock, infinite loop) gets the child's
  whole process group killed and a failed verdict that says so;
* a child whose resident memory passes the criterion's ``memory_limit_mb`` is killed the same way;
* a child that crashes (segfault, ``os._exit``) fails the criterion that was running;
* then a fresh child resumes with the criteria not yet graded.

The grader itself failing (thresholds unreadable, collection error, a criterion the tests do not
implement) is reported as ``grader_errors`` and exit code 2.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from . import events
from .course import REPO_ROOT, CourseError, Part, phase as course_phase
from .outcomes import OutcomesError, load_outcomes
from .profiles import fingerprint as machine_fingerprint
from .records import CriterionResult, GradeRun

__all__ = ["grade_phase", "IMPORT_LIMIT_S"]

IMPORT_LIMIT_S = 120.0
_POLL_S = 0.1


def _rss_bytes(pid: int) -> int:
    try:
        import psutil

        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
        total = 0
        for p in procs:
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
        return total
    except Exception:
        return 0


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def grade_phase(phase: int, *, part: str | None = None, impl: str = "starter", submission: Path | None = None,
                profile: str | None = None, quick: bool = False, task: int | None = None,
                criteria: tuple[str, ...] = (), out: Path, python: str = sys.executable, log=print) -> GradeRun:
    """Grade one phase (every part, or ``part``, or the part that holds ``task``).

    ``criteria``: grade only these criterion ids (and only the parts that hold them), e.g. to re-run
    the one criterion a fix was for; an id the phase does not declare is a grader error.

    Writes nothing but the children's raw files into ``out`` (reports are the CLI's).
    """
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    t_start = time.time()
    out.mkdir(parents=True, exist_ok=True)
    root = Path(submission).resolve() if submission else REPO_ROOT
    run = GradeRun(phase=phase, impl=impl, submission=str(root), profile=profile or "?",
                   fingerprint=machine_fingerprint(), started_at=started, duration_s=0.0,
                   criteria=[], quick=quick, part=part, task=task)
    try:
        ph = course_phase(phase)
        parts = [ph.part(part)] if part is not None or not ph.multipart else list(ph.parts)
        if task is not None:
            owner = ph.part_of_task(task)
            if owner not in parts:
                raise CourseError(f"task {phase}.{task} belongs to part {owner.name}, not {part}")
            parts = [owner]
        outcomes = load_outcomes(phase)
        unknown = [c for c in criteria if c not in outcomes.criteria]
        if unknown:
            raise CourseError(f"phase {phase} has no criterion {', '.join(unknown)} "
                              f"(see {outcomes.path.name})")
        if criteria:
            holders = {outcomes.criteria[c].part for c in criteria}
            parts = [p for p in parts if p.name in holders]
            if not parts:
                raise CourseError(f"{', '.join(criteria)} not in the part or task selected")
    except (CourseError, OutcomesError) as e:
        run.grader_errors.append(str(e))
        return run
    if submission and not root.is_dir():
        run.grader_errors.append(f"submission folder {root} does not exist")
        return run
    (out / "records.jsonl").unlink(missing_ok=True)
    (out / "pytest.log").unlink(missing_ok=True)
    bench_files: list[Path] = []
    graded_any = False
    for p in parts:
        wanted = {c.id: c for c in outcomes.select(part=p.name, task=task) if not criteria or c.id in criteria}
        if not wanted:
            if not p.planned:
                run.grader_errors.append(f"part {p.key} has no criteria"
                                         + (f" for task {phase}.{task}" if task is not None else ""))
            continue
        graded_any = True
        unwanted = {c.id for c in outcomes.select(part=p.name)} - set(wanted)
        _grade_part(p, wanted, run, impl=impl, root=root, quick=quick, task=task, profile=profile, out=out,
                    python=python, log=log, bench_files=bench_files, t_start=t_start, skip=unwanted)
    if not graded_any and not run.grader_errors:
        run.grader_errors.append(f"phase {phase} has no graded criteria yet (its parts are planned)")
    run.duration_s = round(time.time() - t_start, 2)
    run.benchmark_json = _merge_benchmarks(bench_files, out / "benchmark.json")
    return run


def _child_env() -> dict[str, str]:
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", MPLBACKEND="Agg")
    env.setdefault("KINETO_LOG_LEVEL", "6")  # torch.profiler's C++ side: quiet
    # Inductor compiles with a worker process per core by default: on a 16-core GPU box that pool
    # alone passed the 8 GiB memory limit of a criterion. One compile thread keeps grading bounded.
    env.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "1")
    return env


def _grade_part(part: Part, wanted: dict, run: GradeRun, *, impl: str, root: Path, quick: bool,
                task: int | None, profile: str | None, out: Path, python: str, log, bench_files: list[Path],
                t_start: float, skip: set[str] = frozenset()) -> None:
    """Grade the ``wanted`` criteria of one part, restarting the child after each kill, into ``run``."""
    records = out / f"records-{part.name}.jsonl" if part.name else out / "records.jsonl"
    records.unlink(missing_ok=True)
    results: dict[str, CriterionResult] = {}
    import_failed = ""
    tests_dir = REPO_ROOT / part.grader_dir
    env = _child_env()
    # The child runs with cwd = this copy's root, and `python -m` puts the cwd first on sys.path, so
    # `graders` always resolves to this copy even when PYTHONPATH names another one.
    for attempt in range(len(wanted) + 2):
        todo = [c for c in wanted if c not in results]
        if not todo:
            break
        bench = out / f"benchmark-{part.name or 'main'}-{attempt}.json"
        bench_files.append(bench)
        cmd = [python, "-m", "pytest", str(tests_dir), "-p", "graders.plugin", "-q", "--no-header",
               "-p", "no:cacheprovider", "-o", "addopts=--strict-markers", "-o", "console_output_style=classic",
               f"--rootdir={REPO_ROOT}", f"--lab-phase={part.phase}", f"--lab-impl={impl}",
               f"--lab-root={root}", f"--lab-records={records}", f"--benchmark-json={bench}",
               f"--lab-done={','.join([*results, *sorted(skip)])}"]
        cmd += [f"--lab-part={part.name}"] if part.name else []
        cmd += ["--lab-quick"] if quick else []
        cmd += [f"--lab-task={task}"] if task is not None else []
        cmd += [f"--lab-profile={profile}"] if profile else []
        cmd += [f"--lab-import-failed={import_failed}"] if import_failed else []
        with open(out / "pytest.log", "a", encoding="utf-8") as logf:
            logf.write(f"\n=== part {part.key}, attempt {attempt}: {' '.join(cmd)}\n")
            logf.flush()
            proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=logf, stderr=subprocess.STDOUT,
                                    start_new_session=True)
            killed = _watch(proc, records, wanted, results, run, log)
        if killed is None and proc.returncode not in (0, 1):
            # The child ended on its own without finishing a criterion it had started, or never ran.
            killed = ("crashed", f"the grading process exited with code {proc.returncode}", None)
        if killed:
            kind, why, current = killed
            current = current or _current(records)
            if current == "__import__":
                import_failed = f"importing your code did not finish: {why}"
                continue
            if current and current in wanted:
                spec = wanted[current]
                results[current] = CriterionResult.from_spec(spec, spec.thresholds_for(run.profile), verdict="fail",
                                                             message=why, duration_s=time.time() - t_start)
                log(f"  {current}: {why}")
                continue
            if not any(c in results for c in todo):
                tail = (out / "pytest.log").read_text(encoding="utf-8", errors="replace")[-3000:]
                run.grader_errors.append(f"the grading process failed before grading anything "
                                         f"({why}); end of {out / 'pytest.log'}:\n{tail}")
                break
        elif not any(c in results for c in todo):
            break  # nothing new graded and nothing running: stop resuming
    for cid in wanted:
        if cid not in results and not run.grader_errors:
            run.grader_errors.append(f"criterion {cid} was not graded: no test in {tests_dir} "
                                     f"implements it, or it was deselected")
    run.criteria += [results[c] for c in wanted if c in results]


def _current(records: Path) -> str | None:
    """The criterion (or ``__import__``) the child had started and not finished."""
    current = None
    for ev in _events(records):
        if isinstance(ev, events.Start):
            current = ev.id
        elif isinstance(ev, events.ImportStart):
            current = "__import__"
        elif isinstance(ev, (events.End, events.ImportEnd)):
            current = None
    return current


def _events(records: Path):
    if not records.exists():
        return
    with open(records, encoding="utf-8") as f:
        for line in f:
            try:
                yield events.decode(line)
            except events.EventError:
                continue  # a line cut short by a kill


def _watch(proc, records: Path, wanted, results, run: GradeRun, log):
    """Follow the child's events until it exits; kill it on a time or memory limit.

    Returns None when the child exited by itself, or (kind, message, criterion) when it was killed.
    """
    pos = 0
    current, deadline, mem_limit, ev_limit = None, None, None, 0.0
    while True:
        if records.exists():
            with open(records, encoding="utf-8") as f:
                f.seek(pos)
                chunk = f.read()
            complete = chunk[: chunk.rfind("\n") + 1]
            pos += len(complete.encode("utf-8"))
            for line in complete.splitlines():
                try:
                    ev = events.decode(line)
                except events.EventError:
                    continue
                if isinstance(ev, events.Session):
                    run.profile, run.fingerprint = ev.profile, ev.fingerprint
                elif isinstance(ev, events.ImportStart):
                    current, deadline, mem_limit = "__import__", time.time() + IMPORT_LIMIT_S, 8192
                elif isinstance(ev, events.ImportEnd):
                    current = deadline = None
                elif isinstance(ev, events.Start):
                    current, ev_limit = ev.id, ev.time_limit_s
                    deadline = time.time() + ev_limit
                    mem_limit = ev.memory_limit_mb
                elif isinstance(ev, events.End):
                    res = CriterionResult.from_dict(ev.result)
                    if res.id in wanted and res.id not in results:
                        results[res.id] = res
                        log(f"  {res.id:<34} {res.verdict.upper():<12} {res.points:g}/{res.max_points:g}"
                            f"  Task {res.phase}.{res.task}: {res.title}")
                    current = deadline = None
                elif isinstance(ev, events.GraderError) and ev.message not in run.grader_errors:
                    run.grader_errors.append(ev.message)
        if proc.poll() is not None:
            return None
        if deadline is not None and time.time() > deadline:
            _kill(proc)
            what = "importing your code" if current == "__import__" else current
            limit = IMPORT_LIMIT_S if current == "__import__" else ev_limit
            return ("timeout", f"timed out: {what} ran past its limit of {limit:g} s and was stopped "
                               f"(an infinite loop, a deadlock, or far too slow)", current)
        if mem_limit is not None and _rss_bytes(proc.pid) > mem_limit * 2**20:
            _kill(proc)
            return ("memory", f"used more than {mem_limit:g} MiB of memory and was stopped", current)
        time.sleep(_POLL_S)


def _merge_benchmarks(files: list[Path], dest: Path) -> str | None:
    merged = None
    for f in files:
        if not f.exists():
            continue
        try:
            data = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        if merged is None:
            merged = data
        else:
            merged.setdefault("benchmarks", []).extend(data.get("benchmarks", []))
        f.unlink()
    if merged is None:
        return None
    dest.write_text(json.dumps(merged, indent=1), encoding="utf-8")
    return str(dest)
