"""Run one phase's grader in a child process, enforce limits, and survive anything a submission does.

Each part of the phase is graded by its own child, ``python -m pytest graders/phaseN/<part> -p
graders.plugin ...`` (the learner's package differs per part), started in a sandbox where the OS allows
(``graders.sandbox``: no network, the grader read-only, reference solutions hidden, its own tmp). It streams
typed events (``graders.events``), signed, on a pipe (``graders.channel``); the parent (this module), which
never imports learner code, checks each event, writes the good ones to ``records.jsonl``, and decides every
verdict itself from the child's raw measurements (``graders.decide``). It watches the child:

* a forged, duplicated, lost or out-of-order event, or a ``tampered`` flag from the child's guards
  (``graders.tamper``), fails the criterion concerned as ``tampered`` (at import: every criterion);

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
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from . import events
from .channel import ChannelError, Verifier, new_key
from .course import REPO_ROOT, CourseError, Part, phase as course_phase
from .decide import decide, tampered_result
from .verdicts import NOISE_LIMIT
from .outcomes import OutcomesError, load_outcomes
from .profiles import fingerprint as machine_fingerprint
from .records import CriterionResult, GradeRun
from .sandbox import sandbox_for, shared_cache
from .submission import learner_dirs, reference_dirs
from .tamper import scan_submission
from .tamper.baseline import SLOWDOWN_FLAG

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
                criteria: tuple[str, ...] = (), out: Path, python: str = sys.executable, log=print,
                child_user: str | None = None) -> GradeRun:
    """Grade one phase (every part, or ``part``, or the part that holds ``task``).

    ``criteria``: grade only these criterion ids (and only the parts that hold them), e.g. to re-run
    the one criterion a fix was for; an id the phase does not declare is a grader error.
    ``child_user``: run the grading children as this unprivileged user (the runner must be root), e.g. in a
    Gradescope container.

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
                    python=python, log=log, bench_files=bench_files, t_start=t_start, skip=unwanted,
                    child_user=child_user)
    if not graded_any and not run.grader_errors:
        run.grader_errors.append(f"phase {phase} has no graded criteria yet (its parts are planned)")
    run.duration_s = round(time.time() - t_start, 2)
    run.benchmark_json = _merge_benchmarks(bench_files, out / "benchmark.json")
    return run


def _data_cache() -> list[Path]:
    """The course's data cache (``datasets/cache`` or ``$INFERENCE_LAB_CACHE``), which graders fill lazily."""
    path = Path(os.environ.get("INFERENCE_LAB_CACHE") or REPO_ROOT / "datasets" / "cache")
    path.mkdir(parents=True, exist_ok=True)
    return [path]


def _child_env() -> dict[str, str]:
    # The child runs in its own temporary folder (libraries that write to the current folder write there);
    # PYTHONPATH names this copy alone, so `graders` always resolves here even when the caller's named another.
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", MPLBACKEND="Agg", PYTHONPATH=str(REPO_ROOT))
    env.setdefault("KINETO_LOG_LEVEL", "6")  # torch.profiler's C++ side: quiet
    # Inductor compiles with a worker process per core by default: on a 16-core GPU box that pool
    # alone passed the 8 GiB memory limit of a criterion. One compile thread keeps grading bounded.
    env.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "1")
    return env


class _Child:
    """One grading child's signed event stream, checked as it arrives (see ``graders.channel``)."""

    def __init__(self, part: Part, wanted: dict, results: dict, run: GradeRun, records: Path, key: bytes, log,
                 t_start: float):
        self.part, self.wanted, self.results, self.run, self.log, self.t_start = part, wanted, results, run, log, t_start
        self.verifier = Verifier(key)
        self.records = records
        self.buf = b""
        self.current: str | None = None
        self.deadline: float | None = None
        self.mem_limit: float | None = None
        self.ev_limit = 0.0
        self.cuda = False
        self.sessions = 0
        self.pending_tamper: dict[str, str] = {}
        self.last_ended: str | None = None
        self.import_tampered = ""
        self.workload_ms: float | None = None
        self.broken = ""  # why the stream itself can no longer be trusted (the child is then stopped)
        self.noisy_fails: list[str] = []  # measured fails beside machine noise above NOISE_LIMIT (measured again)
        self.proc: subprocess.Popen | None = None

    def feed(self, data: bytes) -> None:
        self.buf += data
        *lines, self.buf = self.buf.split(b"\n")
        for raw in lines:
            if self.broken:
                return
            try:
                body = self.verifier.open(raw.decode("utf-8", errors="replace"))
                ev = events.decode(body)
            except (ChannelError, events.EventError) as e:
                self._tamper(str(e))
                return
            with open(self.records, "a", encoding="utf-8") as f:
                f.write(body + "\n")
            self._handle(ev)

    def _tamper(self, why: str) -> None:
        """The stream broke its own rules: fail the criterion (or import) it concerns as tampered, stop the child."""
        self.broken = why
        self.run.flags.append({"severity": "tampered", "what": why, "where": "", "criterion": self.current or ""})
        if self.current == "__import__":
            self.import_tampered = why

    def _flag(self, ev: events.Flag) -> None:
        target = self.current or self.last_ended or ""
        flag = {"severity": ev.severity, "what": ev.what, "where": ev.where,
                "criterion": "" if target == "__import__" else target}
        if not any(f["what"] == flag["what"] and f["criterion"] == flag["criterion"] for f in self.run.flags):
            self.run.flags.append(flag)
        if ev.severity != "tampered":
            return
        why = ev.what + (f" ({ev.where})" if ev.where else "")
        if self.current == "__import__":
            self.import_tampered = self.import_tampered or why
        elif self.current:
            self.pending_tamper.setdefault(self.current, why)
        elif self.last_ended in self.results:  # a background thread after the criterion ended: it loses the credit
            old = self.results[self.last_ended]
            spec = self.wanted[self.last_ended]
            if not old.tampered:
                self.results[self.last_ended] = tampered_result(spec, spec.thresholds_for(self.run.profile), why,
                                                                duration_s=old.duration_s, details=old.details)

    def _slowdown(self, ev: events.End) -> None:
        """Flag a criterion after which the grader's own fixed workload ran much slower than before the import."""
        w = ev.details.get("grader_workload_ms") if isinstance(ev.details, dict) else None
        if not self.workload_ms or not isinstance(w, dict) or not isinstance(w.get("after"), (int, float)):
            return
        ratio = w["after"] / self.workload_ms
        if ratio > SLOWDOWN_FLAG:
            self.run.flags.append({"severity": "flag", "criterion": ev.id, "where": "",
                                   "what": f"the grader's own fixed workload ran {ratio:.1f}x slower after this criterion "
                                           f"({w['after']:.2f} ms) than before your code was imported "
                                           f"({self.workload_ms:.2f} ms): something slowed the grader's side (or the "
                                           f"machine got much busier)"})

    def _handle(self, ev: events.Event) -> None:
        if isinstance(ev, events.Session):
            self.sessions += 1
            if self.sessions > 1:
                return self._tamper("a second grading session started in the same process")
            self.run.profile, self.run.fingerprint = ev.profile, ev.fingerprint
            self.cuda = bool(ev.fingerprint.get("cuda_available"))
        elif isinstance(ev, events.ImportStart):
            if self.current is not None:
                return self._tamper("the import of your package started twice")
            for g in ev.guards:
                self.run.protections.setdefault(g.split(" (")[0], f"on: {g}")
            self.workload_ms = ev.workload_ms
            self.current, self.deadline, self.mem_limit = "__import__", time.time() + IMPORT_LIMIT_S, 8192
        elif isinstance(ev, events.ImportEnd):
            if self.current != "__import__":
                return self._tamper("an import ended that had not started")
            self.current = self.deadline = None
        elif isinstance(ev, events.Start):
            if self.current is not None or ev.id not in self.wanted or ev.id in self.results:
                return self._tamper(f"criterion {ev.id} started out of order")
            self.current, self.ev_limit = ev.id, ev.time_limit_s
            self.deadline = time.time() + ev.time_limit_s
            self.mem_limit = ev.memory_limit_mb
        elif isinstance(ev, events.End):
            if ev.id != self.current:
                return self._tamper(f"criterion {ev.id} ended without having started")
            spec = self.wanted[ev.id]
            th = spec.thresholds_for(self.run.profile)
            why = self.import_tampered or self.pending_tamper.pop(ev.id, "")
            res = tampered_result(spec, th, why, duration_s=ev.duration_s, details=ev.details) if why \
                else decide(spec, th, ev, cuda=self.cuda)
            self.results[ev.id] = res
            if (not why and ev.outcome == "recorded" and res.verdict == "fail"
                    and (ev.noisy or (ev.noise is not None and ev.noise > NOISE_LIMIT))):
                self.noisy_fails.append(ev.id)
            self._slowdown(ev)
            self.log(f"  {res.id:<34} {res.verdict.upper():<12} {res.points:g}/{res.max_points:g}"
                     f"  Task {res.phase}.{res.task}: {res.title}" + ("  [TAMPERED]" if res.tampered else ""))
            self.last_ended, self.current, self.deadline = ev.id, None, None
        elif isinstance(ev, events.Flag):
            self._flag(ev)
        elif isinstance(ev, events.GraderError) and ev.message not in self.run.grader_errors:
            self.run.grader_errors.append(ev.message)


def _grade_part(part: Part, wanted: dict, run: GradeRun, *, impl: str, root: Path, quick: bool,
                task: int | None, profile: str | None, out: Path, python: str, log, bench_files: list[Path],
                t_start: float, skip: set[str] = frozenset(), child_user: str | None = None) -> None:
    """Grade the ``wanted`` criteria of one part, restarting the child after each kill, into ``run``."""
    records = out / f"records-{part.name}.jsonl" if part.name else out / "records.jsonl"
    records.unlink(missing_ok=True)
    results: dict[str, CriterionResult] = {}
    import_failed = ""
    tests_dir = REPO_ROOT / part.grader_dir
    for finding in scan_submission(learner_dirs(root, part.folder, impl, REPO_ROOT), relative_to=root,
                                   course_root=REPO_ROOT):
        if finding.to_dict() not in run.flags:
            run.flags.append(finding.to_dict())
    noisy: list[str] = []                     # failed beside machine noise above NOISE_LIMIT
    first: dict[str, CriterionResult] = {}    # their first measurement, when measured again
    first_attempt = 0
    for measuring in (1, 2):
        for attempt in range(first_attempt, first_attempt + len(wanted) + 2):
            todo = [c for c in wanted if c not in results]
            if not todo:
                break
            tmp = Path(tempfile.mkdtemp(prefix=f"lab-child-{part.phase}-"))
            try:
                if child_user:
                    _give_to(tmp, child_user)
                    _give_to(shared_cache() / "matplotlib", child_user)
                box = sandbox_for(readonly=[REPO_ROOT], hide=reference_dirs(root, impl, REPO_ROOT), tmp=tmp,
                                  base_env=_child_env(), user=child_user, writable=_data_cache())
                for k, v in box.protections.items():
                    run.protections.setdefault(k, v)
                bench = tmp / "benchmark.json"
                cmd = [python, "-m", "pytest", str(tests_dir), "-p", "graders.plugin", "-q", "--no-header",
                       "-p", "no:cacheprovider", "-o", "addopts=--strict-markers", "-o", "console_output_style=classic",
                       f"--rootdir={REPO_ROOT}", f"--basetemp={tmp / 'pytest'}", f"--lab-phase={part.phase}",
                       f"--lab-impl={impl}", f"--lab-root={root}", f"--benchmark-json={bench}", f"--lab-tmp={tmp}",
                       f"--lab-done={','.join([*results, *sorted(skip)])}"]
                cmd += [f"--lab-part={part.name}"] if part.name else []
                cmd += ["--lab-quick"] if quick else []
                cmd += [f"--lab-task={task}"] if task is not None else []
                cmd += [f"--lab-profile={profile}"] if profile else []
                cmd += [f"--lab-import-failed={import_failed}"] if import_failed else []
                child, killed = _run_child(box, cmd, part, wanted, results, run, records, out, attempt, log, t_start,
                                           child_user)
                noisy += [c for c in child.noisy_fails if c not in noisy]
                if bench.exists():
                    dest = out / f"benchmark-{part.name or 'main'}-{attempt}.json"
                    shutil.copyfile(bench, dest)
                    bench_files.append(dest)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            if child.import_tampered:
                why = child.import_tampered
                for cid in [c for c in wanted if c not in results]:
                    spec = wanted[cid]
                    results[cid] = tampered_result(spec, spec.thresholds_for(run.profile), f"while your package was "
                                                   f"imported: {why}")
                log(f"  importing your code: TAMPERED ({why}); every criterion of part {part.key} fails")
                first_attempt = -1
                break
            if child.broken:
                current = child.current
                if current in wanted and current not in results:
                    spec = wanted[current]
                    results[current] = tampered_result(spec, spec.thresholds_for(run.profile), child.broken,
                                                       duration_s=time.time() - t_start)
                    log(f"  {current}: TAMPERED ({child.broken})")
                else:  # between criteria (a background thread): nothing after it can be trusted, the rest fail
                    for cid in [c for c in wanted if c not in results]:
                        spec = wanted[cid]
                        results[cid] = tampered_result(spec, spec.thresholds_for(run.profile),
                                                       f"between criteria: {child.broken}")
                    log(f"  TAMPERED between criteria ({child.broken}); the criteria left fail")
                continue
            if killed is None and child.proc.returncode not in (0, 1):
                # The child ended on its own without finishing a criterion it had started, or never ran.
                killed = ("crashed", f"the grading process exited with code {child.proc.returncode}", None)
            if killed:
                kind, why, current = killed
                current = current or child.current
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
                    first_attempt = -1
                    break
            elif not any(c in results for c in todo):
                break  # nothing new graded and nothing running: stop resuming
        # A fail measured beside machine noise above the limit is measured once more, in a fresh child, after the
        # rest: the second measurement decides (a busy minute should not fail a correct submission, and a wrong
        # one fails twice). Never after tampering: nothing that child measured is re-trusted.
        again = [c for c in noisy if c in results and results[c].verdict == "fail" and c not in first]
        if measuring == 2 or first_attempt < 0 or not again or any(r.tampered for r in results.values()):
            break
        for c in again:
            first[c] = results.pop(c)
            log(f"  {c}: failed beside machine noise above {NOISE_LIMIT:.0%}: measuring it again")
        first_attempt = attempt + 1
    for c, was in first.items():
        if c in results:
            now = results[c]
            now.details["first_measurement"] = {"verdict": was.verdict, "value": was.value, "message": was.message}
            now.message = (f"measured twice (the first measurement, {was.value:.4g}{was.unit}, failed beside machine "
                           f"noise above {NOISE_LIMIT:.0%}; this is the second, which decides): {now.message}")
    for cid in wanted:
        if cid not in results and not run.grader_errors:
            run.grader_errors.append(f"criterion {cid} was not graded: no test in {tests_dir} "
                                     f"implements it, or it was deselected")
    run.criteria += [results[c] for c in wanted if c in results]


def _give_to(folder: Path, user: str) -> None:
    import pwd

    pw = pwd.getpwnam(user)
    os.chown(folder, pw.pw_uid, pw.pw_gid)


def _run_child(box, cmd, part, wanted, results, run, records, out, attempt, log, t_start, child_user):
    """Start one grading child in ``box`` and follow it to the end; returns (its _Child, how it was killed)."""
    key = new_key()
    key_r, key_w = os.pipe()
    ev_r, ev_w = os.pipe()
    os.write(key_w, key)
    os.close(key_w)
    cmd = [*cmd, f"--lab-key-fd={key_r}", f"--lab-events-fd={ev_w}"]
    child = _Child(part, wanted, results, run, records, key, log, t_start)
    try:
        with open(out / "pytest.log", "a", encoding="utf-8") as logf:
            logf.write(f"\n=== part {part.key}, attempt {attempt}: {' '.join(cmd)}\n")
            logf.flush()
            extra = {"user": child_user} if child_user else {}
            proc = subprocess.Popen([*box.prefix, *cmd], cwd=box.env["TMPDIR"], env=box.env, stdout=logf,
                                    stderr=subprocess.STDOUT, start_new_session=True, pass_fds=(key_r, ev_w), **extra)
            child.proc = proc
            os.close(key_r)
            os.close(ev_w)
            key_r = ev_w = -1
            _pin(proc.pid, run)
            killed = _watch(proc, ev_r, child)
    finally:
        for fd in (key_r, ev_w, ev_r):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
    return child, killed


def _pin(pid: int, run: GradeRun) -> None:
    """Fix the child's CPU affinity to the cores this grade may use (reported; changing it is tamper evidence)."""
    try:
        cores = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(pid, cores)
        run.protections.setdefault("cpu affinity", f"on: pinned to cores {cores}")
    except (AttributeError, OSError) as e:
        run.protections.setdefault("cpu affinity", f"off: {type(e).__name__}")


def _watch(proc, ev_r: int, child: _Child):
    """Follow the child's events until it exits; kill it on a time or memory limit or a broken stream.

    Returns None when the child exited by itself, or (kind, message, criterion) when it was killed.
    """
    os.set_blocking(ev_r, False)
    eof = False
    while True:
        if not eof:
            ready, _, _ = select.select([ev_r], [], [], _POLL_S)
            if ready:
                try:
                    data = os.read(ev_r, 1 << 16)
                except BlockingIOError:
                    data = None
                if data == b"":
                    eof = True
                elif data:
                    child.feed(data)
        else:
            time.sleep(_POLL_S)
        if child.broken or child.import_tampered:
            _kill(proc)
            return None
        if proc.poll() is not None:
            while not eof:  # what the child wrote before it exited
                try:
                    data = os.read(ev_r, 1 << 16)
                except BlockingIOError:
                    break
                if not data:
                    break
                child.feed(data)
            return None
        current = child.current
        if child.deadline is not None and time.time() > child.deadline:
            _kill(proc)
            what = "importing your code" if current == "__import__" else current
            limit = IMPORT_LIMIT_S if current == "__import__" else child.ev_limit
            return ("timeout", f"timed out: {what} ran past its limit of {limit:g} s and was stopped "
                               f"(an infinite loop, a deadlock, or far too slow)", current)
        if child.mem_limit is not None and _rss_bytes(proc.pid) > child.mem_limit * 2**20:
            _kill(proc)
            return ("memory", f"used more than {child.mem_limit:g} MiB of memory and was stopped", current)


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
