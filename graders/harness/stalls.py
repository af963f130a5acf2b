"""Stalls that are the machine's, not the code's: a canary outside the grading process, and no GC.

A latency criterion on a shared machine cannot tell from the latencies alone whether the server was
slow or the machine stopped running it for a while (a neighbour's burst, another virtual machine on
the host, the kernel's scheduler). So, in the same window:

* :func:`watch_stalls` runs a *canary* in its own process: it sleeps 1 ms at a time and records every
  sleep that took more than ``threshold_ms`` longer, with its start and end on the system's
  monotonic clock (the clock the grader's timer reads, ``CLOCK_MONOTONIC`` on Linux). The canary runs
  no learner code and shares no interpreter with it, so what it sees is the machine: a sleep that
  overran by 90 ms is 90 ms in which a process that wanted a core did not get one.
* :func:`gc_paused` collects, then disables the grader process's cyclic garbage collector for the
  window (as ``timeit`` does), so a full collection of the interpreter's objects cannot pause every
  thread mid-measurement.

A criterion widens its interval by the longest stall (a request that waited through a stall of
``S`` ms is at most about ``S`` ms later than it would have been), re-measures while that interval
straddles its threshold, and is inconclusive, never failed, when the machine kept stalling.
"""
from __future__ import annotations

import gc
import json
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

__all__ = ["Stalls", "watch_stalls", "gc_paused"]

#: The canary's loop: sleep ``period``, record each sleep that overran by more than ``threshold``; stop when
#: the parent closes stdin (or after ``max_s``), then print the stalls as JSON ``[[start_ns, end_ns], ...]``.
_CANARY = r"""
import json, sys, threading, time
period_ns, threshold_ns, max_s = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
stalls, period_s = [], period_ns / 1e9
end = time.perf_counter_ns() + int(max_s * 1e9)
print("ready", flush=True)
t = time.perf_counter_ns()
while not stop.is_set() and t < end:
    time.sleep(period_s)
    t2 = time.perf_counter_ns()
    if t2 - t - period_ns > threshold_ns:
        stalls.append([t, t2])
    t = t2
sys.stdout.write(json.dumps(stalls))
"""


@dataclass
class Stalls:
    """What the canary saw in one window. Times in ms; ``available`` False when no canary could run.

    ``intervals_ns`` are the overrun sleeps, ``(start_ns, end_ns)`` on the grader's clock;
    ``period_ms`` the canary's sleep, so a stall's length is ``end - start - period``.
    """

    period_ms: float = 1.0
    intervals_ns: list[tuple[int, int]] = field(default_factory=list)
    available: bool = False
    reason: str = ""
    pid: int | None = None            # the canary's process id while it runs

    @property
    def longest_ms(self) -> float:
        """The longest stall (ms; 0.0 when there was none or no canary ran)."""
        return max(((b - a) / 1e6 - self.period_ms for a, b in self.intervals_ns), default=0.0)

    @property
    def total_ms(self) -> float:
        """All stalled time in the window (ms)."""
        return sum((b - a) / 1e6 - self.period_ms for a, b in self.intervals_ns)

    def describe(self) -> str:
        """One phrase for a message: 'the machine stalled up to 93.1 ms (6 stalls, 210 ms in all)'."""
        if not self.available:
            return f"machine stalls not measured ({self.reason})"
        if not self.intervals_ns:
            return "no machine stall seen"
        return (f"the machine stalled up to {self.longest_ms:.1f} ms ({len(self.intervals_ns)} stall(s), "
                f"{self.total_ms:.0f} ms in all, seen by a canary process)")


@contextmanager
def watch_stalls(*, threshold_ms: float = 2.0, period_ms: float = 1.0, max_s: float = 600.0) -> Iterator[Stalls]:
    """Watch the machine for stalls during the ``with`` block; the yielded ``Stalls`` is filled on exit.

    Args:
        threshold_ms: an overrun of the canary's sleep above this counts as a stall (ms, > 0).
        period_ms: the canary's sleep (ms, > 0).
        max_s: the canary stops by itself after this long, whatever happens to the caller (s).

    Never raises for a canary that cannot start or dies: the result says ``available=False`` and why,
    and a criterion then decides as if the machine had not stalled.

    Raises:
        ValueError: ``threshold_ms``, ``period_ms`` or ``max_s`` not positive.
    """
    if threshold_ms <= 0 or period_ms <= 0 or max_s <= 0:
        raise ValueError(f"watch_stalls: threshold_ms, period_ms and max_s must be > 0, got "
                         f"{threshold_ms}, {period_ms}, {max_s}")
    result = Stalls(period_ms=period_ms)
    try:
        proc = subprocess.Popen([sys.executable, "-c", _CANARY, str(int(period_ms * 1e6)),
                                 str(int(threshold_ms * 1e6)), str(max_s)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    except OSError as e:
        result.reason = f"the canary could not start: {e}"
        yield result
        return
    result.pid = proc.pid
    try:
        ready = proc.stdout.readline().strip() == "ready"
        if not ready:
            result.reason = "the canary exited before it was ready"
        yield result
    finally:
        try:
            out, _ = proc.communicate(input="", timeout=10)
            if ready:
                result.intervals_ns = [(int(a), int(b)) for a, b in json.loads(out or "[]")]
                result.available = True
        except (subprocess.TimeoutExpired, ValueError, TypeError) as e:
            proc.kill()
            proc.wait(timeout=5)
            result.reason = f"the canary gave no answer ({type(e).__name__})"


@contextmanager
def gc_paused() -> Iterator[None]:
    """Collect, then keep the cyclic garbage collector off for the ``with`` block (restored after)."""
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
