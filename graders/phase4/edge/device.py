"""The grader's edge device: a bundle run as it is, in a process the grader constrains and clocks.

The edge profile (EDGE_DEPLOYMENT_GUIDE.md, "Testing strategy"):

- one CPU core (``sched_setaffinity``) and one thread per runtime (``OMP_NUM_THREADS=1``...);
- no torch, no course package, no file outside the bundle folder (``bootstrap.py`` enforces and reports it);
- frames released on the clip's clock (``fps``): the grader is the camera, and a frame the runner is not ready
  to take when the next one is due is dropped at the camera, as a live sensor does;
- a slowdown on demand: ``k`` busy processes pinned to the same core for a stated period (a background job, a
  throttled clock).

The grader owns every clock: latency is the time from a frame's scheduled release to its answer line.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HEADER_MAGIC = b"FRM1"
BOOTSTRAP = Path(__file__).with_name("bootstrap.py")
READY_TIMEOUT_S = 90.0
DEADLINE_MS = 50.0


@dataclass
class DeviceRun:
    """What happened on the device.

    ``released[i]`` is frame i's scheduled release time (s, grader's clock, None if the camera dropped it because
    the runner was not reading); ``answers[i]`` is ``(time_s, parsed answer)``; ``problems`` are protocol
    violations; ``events`` are the guard's reports (blocked imports, files outside the folder).
    """

    frames: int
    released: dict[int, float] = field(default_factory=dict)
    camera_dropped: list[int] = field(default_factory=list)
    answers: dict[int, tuple[float, dict]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)
    ready: dict | None = None
    start_t: float = 0.0
    peak_rss_mb: float | None = None
    cpu_s: float | None = None
    returncode: int | None = None
    stderr_tail: str = ""
    slow: tuple[float, float, int] | None = None  # (start_s, end_s, busy processes), relative to start_t
    fps: float = 30.0
    #: (seconds after the start, CPU ns, runqueue-wait ns) of the device process, all threads: at the start, at
    #: the slowdown's start and end, and at the end (``contention``)
    sched: list[tuple[float, int, int]] = field(default_factory=list)

    def contention(self, t0: float, t1: float) -> float | None:
        """Share of the time the device wanted its core but waited for it, between the samples nearest t0 and t1.

        About 0 on a free core; about k / (k + 1) with k busy processes; in between when something else (another
        grade, a neighbour) shares the core. None without samples.
        """
        if len(self.sched) < 2:
            return None
        a = min(self.sched, key=lambda x: abs(x[0] - t0))
        b = min(self.sched, key=lambda x: abs(x[0] - t1))
        run, wait = b[1] - a[1], b[2] - a[2]
        return wait / (run + wait) if run + wait > 0 else None

    def latency_ms(self, i: int) -> float:
        """Release-to-answer time of frame i (inf when it was not answered)."""
        if i not in self.answers or i not in self.released:
            return float("inf")
        return 1e3 * (self.answers[i][0] - self.released[i])

    def frames_between(self, t0: float, t1: float) -> list[int]:
        """Frames scheduled in [t0, t1) seconds after the start."""
        return [i for i in range(self.frames) if t0 <= i / self.fps < t1]

    def guard_failures(self) -> list[str]:
        out = []
        for e in self.events:
            if e.get("kind") == "import":
                out.append(f"the bundle imported {e.get('name')!r}: blocked on the device (no torch, no course package)")
            elif e.get("kind") == "outside":
                out.append(f"the bundle opened {e.get('path')}, outside its folder")
        return list(dict.fromkeys(out))

    def why_not_ready(self) -> str:
        guard = self.guard_failures()
        tail = self.stderr_tail.strip().splitlines()[-3:]
        return "; ".join(guard + (["its last words: " + " | ".join(tail)] if tail else []))


def _vm_hwm_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _schedstat(pid: int) -> tuple[int, int] | None:
    """(CPU ns, runqueue-wait ns) of every thread of ``pid`` (``/proc/<pid>/task/*/schedstat``)."""
    run = wait = 0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                r, w, _ = (int(x) for x in (task / "schedstat").read_text().split())
            except (OSError, ValueError):
                continue
            run, wait = run + r, wait + w
    except OSError:
        return None
    return run, wait


def _cpu_s(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def device_core() -> int:
    """The core the device process gets: the last one this grade may use."""
    return max(os.sched_getaffinity(0))


@contextlib.contextmanager
def grader_off_core(core: int):
    """Move every thread of the grader's process off the device's core for the run, when another core is allowed.

    ``sched_setaffinity`` applies to one thread: each thread of ``/proc/self/task`` is moved, and threads started
    meanwhile inherit the mask of the thread that starts them. Restored afterwards.
    """
    allowed = os.sched_getaffinity(0)
    others = allowed - {core}
    saved: dict[int, set[int]] = {}
    if others:
        for task in Path("/proc/self/task").iterdir():
            tid = int(task.name)
            try:
                saved[tid] = os.sched_getaffinity(tid)
                os.sched_setaffinity(tid, others)
            except OSError:
                pass
    try:
        yield
    finally:
        for tid, mask in saved.items():
            try:
                os.sched_setaffinity(tid, mask)
            except OSError:
                pass


def _busy(core: int) -> subprocess.Popen:
    code = f"import os\nos.sched_setaffinity(0, {{{core}}})\nwhile True:\n    pass\n"
    return subprocess.Popen([sys.executable, "-I", "-c", code], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def slowdown_processes(pid: int, answered: int, interval_s: float, cpu_before: float | None = None) -> int:
    """How many busy processes make the device too slow for what it runs now: 1 to 3.

    The device's CPU time per answered frame since the first frame (``cpu_before``: its CPU time then), ``c``, is
    the grader's own measure (``/proc``); ``k`` busy
    processes leave the runner about ``1 / (k + 1)`` of its core, so ``k = ceil(1.5 x interval / c) - 1`` makes a
    frame take about 1.5 frame intervals: the variant in use cannot keep up, a cheaper one can.
    """
    cpu = _cpu_s(pid)
    if not cpu or answered < 10:
        return 2
    c = (cpu - (cpu_before or 0.0)) / answered
    if c <= 0:
        return 2
    return int(min(3, max(1, math.ceil(1.5 * interval_s / c) - 1)))


def run_on_device(folder: str | Path, frames: np.ndarray, *, fps: float | None = 30.0, variant: str | None = None,
                  slow: tuple[float, float, int] | None = None, timeout_s: float = 120.0) -> DeviceRun:
    """See :func:`_run_on_device`; the grader's own threads stay off the device's core meanwhile."""
    with grader_off_core(device_core()):
        return _run_on_device(folder, frames, fps=fps, variant=variant, slow=slow, timeout_s=timeout_s)


def _run_on_device(folder: str | Path, frames: np.ndarray, *, fps: float | None = 30.0, variant: str | None = None,
                   slow: tuple[float, float, int] | None = None, timeout_s: float = 120.0) -> DeviceRun:
    """Run the bundle in ``folder`` on ``frames`` under the edge profile.

    Args:
        folder: the bundle folder, run as it is.
        frames: uint8 [T, H, W, 3] BGR.
        fps: release rate (the camera's clock); None = lockstep: each frame is sent once the previous one is
            answered (or 2 s passed), to measure a variant without drops.
        variant: passed as ``--variant`` (one variant, no controller).
        slow: ``(start_s, end_s, k)``: k busy processes on the device core from start_s to end_s after the start
            (k = 0: :func:`slowdown_processes` picks it when the slowdown starts; ``DeviceRun.slow`` says which).
        timeout_s: the whole run, ready included; the process is killed after it.

    Returns:
        A :class:`DeviceRun`.
    """
    folder = Path(folder).resolve()
    core = device_core()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "INFERENCE_LAB"))}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", ORT_NUM_THREADS="1",
               OPENCV_FOR_THREADS_NUM="1")
    report_r, report_w = os.pipe()
    args = [sys.executable, "-I", str(BOOTSTRAP), str(folder), str(report_w)] + (["--variant", variant] if variant else [])
    stderr_path = folder.parent / f".{folder.name}-stderr-{os.getpid()}-{time.monotonic_ns()}.txt"
    run = DeviceRun(frames=len(frames), fps=fps or 30.0, slow=slow)
    deadline = time.monotonic() + timeout_s
    with open(stderr_path, "w+b") as err:
        proc = subprocess.Popen(args, cwd=folder, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                                pass_fds=(report_w,), preexec_fn=lambda: os.sched_setaffinity(0, {core}))
        os.close(report_w)
        busy: list[subprocess.Popen] = []

        def read_report() -> None:
            with os.fdopen(report_r, "r", errors="replace") as f:
                for line in f:
                    try:
                        run.events.append(json.loads(line))
                    except ValueError:
                        pass

        reporter = threading.Thread(target=read_report, daemon=True)
        reporter.start()
        answered = threading.Condition()
        ready = threading.Event()

        def read_answers() -> None:
            for line in proc.stdout:
                now = time.perf_counter()
                try:
                    msg = json.loads(line)
                except ValueError:
                    run.problems.append(f"not a JSON line on stdout: {line[:80]!r}")
                    continue
                if not isinstance(msg, dict):
                    run.problems.append(f"not a JSON object on stdout: {line[:80]!r}")
                    continue
                if run.ready is None:
                    if msg.get("ready") is True:
                        run.ready = msg
                        ready.set()
                    else:
                        run.problems.append("the first line was not the ready line")
                    continue
                i = msg.get("index")
                if not isinstance(i, int) or not 0 <= i < len(frames):
                    run.problems.append(f"an answer for frame {i!r}, which was never sent")
                elif i in run.answers:
                    run.problems.append(f"frame {i} answered twice")
                else:
                    with answered:
                        run.answers[i] = (now, msg)
                        answered.notify_all()
            ready.set()

        reader = threading.Thread(target=read_answers, daemon=True)
        reader.start()
        try:
            ready.wait(timeout=min(READY_TIMEOUT_S, timeout_s))
            if run.ready is not None:
                _feed(proc, frames, fps, run, answered, slow, busy, core, deadline)
                # the last answers, then the figures, before the input ends
                with answered:
                    answered.wait_for(lambda: len(run.answers) >= len(run.released) or proc.poll() is not None,
                                      timeout=max(0.0, min(2.0, deadline - time.monotonic())))
                run.peak_rss_mb = _vm_hwm_mb(proc.pid)
                run.cpu_s = _cpu_s(proc.pid)
                got = _schedstat(proc.pid)
                if got is not None:
                    run.sched.append((time.perf_counter() - run.start_t, *got))
            try:
                proc.stdin.close()
            except OSError:
                pass
            try:
                proc.wait(timeout=max(1.0, min(10.0, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                run.problems.append("the runner did not exit within 10 s of the end of its input")
        finally:
            for b in busy:
                b.kill()
                b.wait()
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
            reader.join(timeout=5)
            reporter.join(timeout=5)
        run.returncode = proc.returncode
        err.seek(0, os.SEEK_END)
        err.seek(max(0, err.tell() - 4000))
        run.stderr_tail = err.read().decode(errors="replace")
    stderr_path.unlink(missing_ok=True)
    return run


def _feed(proc, frames, fps, run, answered, slow, busy, core, deadline) -> None:
    """Release the frames on the clock (or in lockstep), start and stop the slowdown."""
    start = time.perf_counter()
    run.start_t = start
    interval = None if fps is None else 1.0 / fps

    def sample() -> None:
        got = _schedstat(proc.pid)
        if got is not None:
            run.sched.append((time.perf_counter() - start, *got))

    sample()
    cpu_start = _cpu_s(proc.pid)
    for i, frame in enumerate(frames):
        if time.monotonic() > deadline or proc.poll() is not None:
            break
        if interval is not None:
            due = start + i * interval
            now = time.perf_counter()
            if now < due:
                time.sleep(due - now)
            elif now - due > interval:
                run.camera_dropped.append(i)  # the runner was not reading: a live camera does not wait
                continue
            if slow is not None:
                t = time.perf_counter() - start
                if not busy and slow[0] <= t < slow[1]:
                    k = slow[2] or slowdown_processes(proc.pid, len(run.answers), interval, cpu_start)
                    run.slow = (slow[0], slow[1], k)
                    sample()
                    busy.extend(_busy(core) for _ in range(k))
                elif busy and t >= slow[1]:
                    sample()
                    for b in busy:
                        b.kill()
                        b.wait()
                    busy.clear()
            run.released[i] = due
        else:
            run.released[i] = time.perf_counter()
        head = HEADER_MAGIC + np.array([i], "<u4").tobytes() + np.array(frame.shape[:2], "<u2").tobytes() \
            + np.array([3], "<u4").tobytes()
        try:
            proc.stdin.write(head)
            proc.stdin.write(np.ascontiguousarray(frame, np.uint8).tobytes())
            proc.stdin.flush()
        except (BrokenPipeError, OSError):
            break
        if interval is None:
            with answered:
                answered.wait_for(lambda: i in run.answers or proc.poll() is not None, timeout=2.0)
