"""The machine-stall canary sees a stall it did not cause, and the GC pause restores the collector."""
from __future__ import annotations

import gc
import os
import signal
import sys
import time

import pytest

from graders.harness.stalls import Stalls, gc_paused, watch_stalls

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGSTOP is POSIX")


def test_a_stopped_canary_reports_a_stall_about_as_long_as_the_stop():
    with watch_stalls() as stalls:
        time.sleep(0.05)
        os.kill(stalls.pid, signal.SIGSTOP)        # what a descheduled process looks like from inside
        time.sleep(0.15)
        os.kill(stalls.pid, signal.SIGCONT)
        time.sleep(0.05)
    assert stalls.available, stalls.reason
    assert 120 <= stalls.longest_ms <= 1000, stalls.intervals_ns
    assert "stalled up to" in stalls.describe()


def test_the_canary_s_stalls_are_on_the_grader_s_clock():
    t0 = time.perf_counter_ns()
    with watch_stalls() as stalls:
        # Let the canary reach its sleep loop first: a process stopped before its first sleep has no
        # overrun to record (seen once in CI on a loaded 2-core machine).
        time.sleep(0.3)
        os.kill(stalls.pid, signal.SIGSTOP)
        time.sleep(0.15)
        os.kill(stalls.pid, signal.SIGCONT)
        time.sleep(0.2)                 # and time to wake, see its overrun and report it
    t1 = time.perf_counter_ns()
    longest = max(stalls.intervals_ns, key=lambda ab: ab[1] - ab[0])
    assert t0 <= longest[0] < longest[1] <= t1


def test_no_canary_means_no_excuse():
    s = Stalls(reason="the canary could not start")
    assert s.longest_ms == 0.0 and not s.available and "not measured" in s.describe()
    with pytest.raises(ValueError):
        with watch_stalls(threshold_ms=0):
            pass


def test_gc_is_paused_inside_and_restored_after():
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()              # it was off before: it stays off
    finally:
        gc.enable()
