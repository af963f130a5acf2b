"""Task 3.4: the learner's load generator, read against a grader server that records the truth.

The server (:class:`FakeServer`) answers each request after its own service time, whatever else is
in flight, and records when each request really arrived and was answered. The learner's report
must agree with that record: the same latencies, the same throughput, the same number of requests,
the load shape asked for (exactly ``concurrency`` in flight; Poisson gaps, open loop).
"""
from __future__ import annotations

import math
import random

import numpy as np
import torch

from ...checks import as_float, as_int, expect, get_field, rel_err
from ...harness import gc_paused, poisson_gap_problem, summarize, watch_stalls
from ...harness.timing import now_ns
from ...plugin import criterion
from .workloads import FakeServer


def _service_closed(rng: random.Random) -> float:
    """90% around 20 ms, 10% around 50 ms: p95 and p99 sit in the slow mode."""
    return rng.uniform(15, 25) if rng.random() < 0.9 else rng.uniform(40, 60)


def _service_poisson(rng: random.Random) -> float:
    return rng.uniform(10, 30) if rng.random() < 0.9 else rng.uniform(40, 60)


class _Inputs:
    """``make_input`` for the learner: records which indices were built, and when."""

    def __init__(self):
        self.made: list[tuple[int, int]] = []

    def __call__(self, i: int) -> torch.Tensor:
        self.made.append((int(i), now_ns()))
        return torch.full((4,), float(i))


def _report(obj, what: str) -> dict[str, float]:
    fields = ("requests", "completed", "failed")
    out = {f: as_int(get_field(obj, f, what), f"{what}.{f}") for f in fields}
    for f in ("duration_s", "throughput_per_s", "p50_ms", "p95_ms", "p99_ms"):
        out[f] = as_float(get_field(obj, f, what), f"{what}.{f}")
    return out


def _inputs_first(inputs: _Inputs, server: FakeServer, n: int) -> str | None:
    idx = sorted(i for i, _ in inputs.made)
    if idx != list(range(n)):
        return f"make_input was called for {len(idx)} indices, expected each of 0..{n - 1} once"
    if server.arrivals and max(t for _, t in inputs.made) > server.arrivals[0]:
        return "make_input was still being called after the first request was sent: build every input first"
    return None


@criterion("p3.batching.loadgen_closed")
def test_loadgen_closed(grade, learner):
    conc, n = 8, (200 if grade.quick else 320)
    server = FakeServer(_service_closed, seed=random.SystemRandom().randrange(2**31), refuse=lambda k: k % 37 == 11)
    inputs = _Inputs()
    try:
        rep = learner.call("run_closed_loop", server.submit, inputs, concurrency=conc, requests=n, timeout_s=10.0)
    finally:
        server.close()
    got = _report(rep, "run_closed_loop(...)")
    problems = [p for p in [_inputs_first(inputs, server, n)] if p]
    if len(server.arrivals) != n:
        problems.append(f"the server received {len(server.arrivals)} requests; requests={n} means exactly {n}")
    if server.max_in_flight != conc:
        problems.append(f"at most {server.max_in_flight} requests were in flight; concurrency={conc} means "
                        f"exactly {conc} at the peak")
    refused = len(server.refused)
    if (got["requests"], got["completed"], got["failed"]) != (n, n - refused, refused):
        problems.append(f"report says requests={got['requests']}, completed={got['completed']}, failed="
                        f"{got['failed']}; the server saw {n} requests and refused {refused}")
    lat = summarize(server.latencies_ms())
    first, last = server.arrivals[0] if server.arrivals else 0, max(server.answered.values(), default=0)
    true_tp = len(server.answered) / max(1e-9, (last - first) / 1e9)
    errs = {"throughput": rel_err(got["throughput_per_s"], true_tp), "p50": rel_err(got["p50_ms"], lat.median),
            "p95": rel_err(got["p95_ms"], lat.p95)}
    details = {"concurrency": conc, "requests": n, "refused": refused, "server_max_in_flight": server.max_in_flight,
               "true_throughput": true_tp, "your_throughput": got["throughput_per_s"], "true_p50_ms": lat.median,
               "your_p50_ms": got["p50_ms"], "true_p95_ms": lat.p95, "your_p95_ms": got["p95_ms"],
               "errors_pct": {k: 100 * v for k, v in errs.items()}, "problems": problems}
    if problems:
        grade.fail("; ".join(problems), details=details)
        return
    worst = max(errs, key=errs.get)
    grade.record(100 * errs[worst], details=details,
                 message=f"worst: {worst} ({100 * errs[worst]:.1f}%). Throughput yours {got['throughput_per_s']:.1f} "
                         f"vs true {true_tp:.1f} req/s; p50 {got['p50_ms']:.1f} vs {lat.median:.1f} ms; p95 "
                         f"{got['p95_ms']:.1f} vs {lat.p95:.1f} ms")


#: p3.batching.loadgen_poisson measures again while the arrivals' rate or shape is off and the machine
#: stalled for longer than STALL_EXCUSE_MS in the same window (a stalled sender sends late, in a burst).
POISSON_ATTEMPTS = 3
STALL_EXCUSE_MS = 5.0


@criterion("p3.batching.loadgen_poisson")
def test_loadgen_poisson(grade, learner):
    """Gates: inputs built first, the arrival rate and the gaps' shape (``poisson_gap_problem``), open
    loop, honest counts; then the learner's p50/p95/p99 against the server's own record.

    The rate and the shape are the machine's as much as the sender's: a stall of tens of ms makes
    exponential gaps bursty. An attempt whose only problems are those two, while a canary process saw
    the machine stall for more than ``STALL_EXCUSE_MS``, is measured again (``POISSON_ATTEMPTS`` in all
    at most); the last attempt decides, and its message says how the machine behaved.
    """
    rate, dur = 300.0, (1.5 if grade.quick else 3.0)
    stalled: list[float] = []
    while True:
        server = FakeServer(_service_poisson, seed=random.SystemRandom().randrange(2**31))
        inputs = _Inputs()
        try:
            with gc_paused(), watch_stalls() as stalls:
                rep = learner.call("run_poisson", server.submit, inputs, rate_per_s=rate, duration_s=dur,
                                   seed=random.SystemRandom().randrange(2**31), timeout_s=10.0)
        finally:
            server.close()
        got = _report(rep, "run_poisson(...)")
        n = len(server.arrivals)
        expect(n >= 2, f"the server received {n} requests; at {rate:g} req/s for {dur:g} s about {rate * dur:.0f} "
                       f"were due")
        gaps = np.diff(np.asarray(server.arrivals, dtype=np.float64)) / 1e9
        seen_rate = 1.0 / float(gaps.mean())
        allowed = max(0.15, 4 / math.sqrt(n))           # 4 standard errors of a Poisson count
        timing = []                                     # problems a stalled machine can cause
        if abs(seen_rate / rate - 1) > allowed:
            timing.append(f"requests arrived at {seen_rate:.0f} req/s; offered {rate:g} (allowed +-{allowed:.0%})")
        if shape := poisson_gap_problem(gaps):
            timing.append(shape)
        stalled.append(stalls.longest_ms)
        first = _inputs_first(inputs, server, n)
        if first or not timing or stalls.longest_ms <= STALL_EXCUSE_MS or len(stalled) == POISSON_ATTEMPTS:
            break
    problems = [p for p in [first] if p] + timing
    cv = float(gaps.std() / gaps.mean())
    if server.max_in_flight < 3:
        problems.append(f"at most {server.max_in_flight} requests were in flight although the server is slower "
                        f"than the gaps: the sender must not wait for answers (open loop)")
    if (got["requests"], got["completed"], got["failed"]) != (n, len(server.answered), n - len(server.answered)):
        problems.append(f"report says requests={got['requests']}, completed={got['completed']}; the server saw "
                        f"{n} and answered {len(server.answered)}")
    offered = get_field(rep, "offered_rate_per_s", "run_poisson(...)")
    if offered is None or not math.isclose(float(offered), rate):
        problems.append(f"offered_rate_per_s is {offered!r}, expected {rate:g}")
    lat = summarize(server.latencies_ms())
    errs = {"p50": rel_err(got["p50_ms"], lat.median), "p95": rel_err(got["p95_ms"], lat.p95),
            "p99": rel_err(got["p99_ms"], lat.p99)}
    details = {"offered_rate": rate, "seen_rate": seen_rate, "gap_cv": cv, "arrivals": n, "attempts": len(stalled),
               "machine_longest_stall_ms": stalled, "machine_stalls_measured": stalls.available,
               "server_max_in_flight": server.max_in_flight, "true_p50_ms": lat.median, "your_p50_ms": got["p50_ms"],
               "true_p95_ms": lat.p95, "your_p95_ms": got["p95_ms"], "true_p99_ms": lat.p99,
               "your_p99_ms": got["p99_ms"], "errors_pct": {k: 100 * v for k, v in errs.items()}, "problems": problems}
    again = f"; attempt {len(stalled)} of {POISSON_ATTEMPTS}" if len(stalled) > 1 else ""
    if problems:
        excuse = f" ({stalls.describe()}{again})" if timing and stalls.longest_ms > STALL_EXCUSE_MS else ""
        grade.fail("; ".join(problems) + excuse, details=details)
        return
    worst = max(errs, key=errs.get)
    grade.record(100 * errs[worst], details=details,
                 message=f"worst: {worst} ({100 * errs[worst]:.1f}%). {n} arrivals at {seen_rate:.0f} req/s "
                         f"(offered {rate:g}), gap CV {cv:.2f}, up to {server.max_in_flight} in flight; p50 "
                         f"{got['p50_ms']:.1f} vs {lat.median:.1f} ms, p99 {got['p99_ms']:.1f} vs {lat.p99:.1f} ms"
                         f"{again}")
