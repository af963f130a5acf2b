"""p3.batching.loadgen_poisson measures again only when the machine stalled, and says so.

The criterion runs in this process with a scripted sender and a scripted canary: a sender whose first
run is bursty while the canary saw the machine stall is measured again and passes; a bursty sender
with no stall to explain it fails at once; one that stays bursty through three stalled attempts fails
on the third, with the machine's stalls in its message.
"""
from __future__ import annotations

import time
from contextlib import contextmanager

import numpy as np
import pytest

from graders.harness import Stalls
from graders.phase3.batching import test_loadgen as criterion_module
from graders.plugin import Grade
from phase3_advanced.batching.types import LoadReport


def _sender(bursty_runs: int):
    """``run_poisson`` that sends the first ``bursty_runs`` runs in bursts of five, then exponential gaps."""
    runs = []

    def run_poisson(submit_fn, make_input, *, rate_per_s, duration_s, seed=0, timeout_s=30.0):
        bursty = len(runs) < bursty_runs
        runs.append(bursty)
        rng = np.random.default_rng(seed)
        gaps = np.where(np.arange(10_000) % 5 == 0, 5 / rate_per_s, 0.0) if bursty else \
            rng.exponential(1 / rate_per_s, size=10_000)
        times = [t for t in np.cumsum(gaps) if t < duration_s]
        inputs = [make_input(i) for i in range(len(times))]
        start, sent = time.perf_counter(), []
        for x, at in zip(inputs, times):
            time.sleep(max(0.0, start + at - time.perf_counter()))
            sent.append((submit_fn(x), start + at))
        latencies = []
        for fut, due in sent:
            fut.result(timeout=timeout_s)
            latencies.append((time.perf_counter() - due) * 1e3)   # an upper bound: fine for this test
        return LoadReport.from_latencies("poisson", latencies, failed=0, duration_s=time.perf_counter() - start,
                                         offered_rate_per_s=float(rate_per_s))
    return run_poisson, runs


class _Learner:
    def __init__(self, fn):
        self.fn = fn

    def call(self, name, *args, **kwargs):
        assert name == "run_poisson"
        return self.fn(*args, **kwargs)


def _grade(monkeypatch, bursty_runs: int, stall_ms: float) -> tuple[Grade, list[bool]]:
    @contextmanager
    def canary(**_):
        yield Stalls(available=True, intervals_ns=[(0, int((stall_ms + 1) * 1e6))] if stall_ms else [])
    monkeypatch.setattr(criterion_module, "watch_stalls", canary)
    fn, runs = _sender(bursty_runs)
    grade = Grade(None, None, "cpu", quick=True, cuda=False)
    criterion_module.test_loadgen_poisson(grade, _Learner(fn))
    return grade, runs


@pytest.mark.slow
def test_a_stalled_machine_earns_another_measurement(monkeypatch):
    grade, runs = _grade(monkeypatch, bursty_runs=1, stall_ms=30.0)
    assert runs == [True, False] and not grade.forced_fail, grade.message
    assert grade.details["attempts"] == 2 and "attempt 2 of 3" in grade.message


@pytest.mark.slow
def test_no_stall_no_excuse(monkeypatch):
    grade, runs = _grade(monkeypatch, bursty_runs=1, stall_ms=0.0)
    assert runs == [True] and grade.forced_fail and "bursts" in grade.message, grade.message


@pytest.mark.slow
def test_bursty_through_every_stalled_attempt_fails_on_the_last(monkeypatch):
    grade, runs = _grade(monkeypatch, bursty_runs=3, stall_ms=30.0)
    assert runs == [True] * 3 and grade.forced_fail, grade.message
    assert "bursts" in grade.message and "the machine stalled up to 30.0 ms" in grade.message
    assert "attempt 3 of 3" in grade.message
