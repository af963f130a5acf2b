"""Task 1.2: latency statistics and measurement, checked against the grader's own clock."""
from __future__ import annotations

import random

import numpy as np
import torch

from ..checks import as_float, as_int, expect, get_field, rel_err
from ..harness import Witness, ratio_disagreement, straddles, summarize, threads, time_callable
from ..plugin import criterion
from .diagnosis import calls_hint, timed_region_hint
from .workloads import AsyncDevice, KnownLatency, small_model

FIELDS = ("mean_ms", "std_ms", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "min_ms", "max_ms", "cv")


def _stats(obj, what: str) -> dict[str, float]:
    return {f: as_float(get_field(obj, f, what), f"{what}.{f}") for f in (*FIELDS,)}


@criterion("p1.stats_exact")
def test_stats_exact(grade, learner):
    rng = np.random.default_rng(random.SystemRandom().randrange(2**32))
    worst, where = 0.0, ""
    for n in (1, 7, int(rng.integers(50, 1000))):
        samples = rng.lognormal(mean=1.0, sigma=0.4, size=n).tolist()
        got = learner.call("summarize_latencies", list(samples))
        g = _stats(got, "summarize_latencies(...)")
        expect(as_int(get_field(got, "n_samples", "LatencyStats"), "n_samples") == n,
               f"n_samples should be {n}")
        a = np.asarray(samples)
        want = dict(zip(("p50_ms", "p90_ms", "p95_ms", "p99_ms"), np.percentile(a, [50, 90, 95, 99])))
        want.update(mean_ms=a.mean(), std_ms=a.std(), min_ms=a.min(), max_ms=a.max(), cv=a.std() / a.mean())
        for f in FIELDS:
            e = rel_err(g[f], float(want[f])) if want[f] else abs(g[f])
            if e > worst:
                worst, where = e, f"{f} with {n} samples: yours {g[f]:.6g}, numpy {float(want[f]):.6g}"
    grade.record(worst, message=f"largest error: {where}" if where else "exact")


@criterion("p1.known_latency")
def test_known_latency(grade, learner):
    work = KnownLatency(seed=random.SystemRandom().randrange(2**32), cold_calls=5)
    iters = 40 if grade.quick else 80
    got = learner.call("measure_latency", work, warmup=5, iterations=iters)
    g = _stats(got, "measure_latency(...)")
    calls = len(work.observed_ms)
    expect(calls >= 5 + iters, f"measure_latency called fn {calls} times; expected warmup + iterations = {5 + iters}")
    truth = summarize(work.observed_ms[-iters:])  # the timed calls are the last `iterations`
    errs = {"mean": rel_err(g["mean_ms"], truth.mean), "p50": rel_err(g["p50_ms"], truth.median),
            "p90": rel_err(g["p90_ms"], truth.p90)}
    worst = max(errs, key=errs.get)
    grade.record(100 * errs[worst],
                 message=f"{worst}: yours {g[worst + '_ms' if worst != 'mean' else 'mean_ms']:.3f} ms, "
                         f"true {getattr(truth, 'median' if worst == 'p50' else worst):.3f} ms",
                 details={"true_mean_ms": truth.mean, "true_p50_ms": truth.median, "true_p90_ms": truth.p90,
                          "your_mean_ms": g["mean_ms"], "your_p50_ms": g["p50_ms"], "your_p90_ms": g["p90_ms"],
                          "calls": calls})


@criterion("p1.async_sync")
def test_async_sync(grade, learner):
    dev = AsyncDevice(seed=random.SystemRandom().randrange(2**32))
    iters = 30 if grade.quick else 60
    got = learner.call("measure_latency", dev.launch, warmup=3, iterations=iters, sync=dev.sync)
    g = _stats(got, "measure_latency(...)")
    dev.sync()  # every job finished: each has its true launch-to-done latency
    truth = summarize(dev.latency_ms[-iters:])
    errs = {"mean": rel_err(g["mean_ms"], truth.mean), "p50": rel_err(g["p50_ms"], truth.median)}
    worst = max(errs, key=errs.get)
    grade.record(100 * errs[worst],
                 message=f"your p50 {g['p50_ms']:.3f} ms vs true launch-to-done p50 {truth.median:.3f} ms",
                 details={"true_p50_ms": truth.median, "your_p50_ms": g["p50_ms"], "your_mean_ms": g["mean_ms"]})


def _model_call():
    """A real model call of a few ms (64x64 input): long enough that per-call overheads don't matter."""
    torch.manual_seed(0)
    model = small_model()
    x = torch.randn(1, 3, 64, 64)

    def call():
        with torch.inference_mode():
            model(x)

    return call


#: Rounds of p50_agrees at first, and at most while its interval straddles the threshold.
ROUNDS, MAX_ROUNDS = 5, 9


def _witnessed_p50(learner, witness: Witness, iters: int) -> tuple[float, float, int]:
    """One learner ``measure_latency`` of the witnessed call: (your p50, the grader's p50 of the same calls, calls)."""
    with witness.run() as run:
        got = learner.call("measure_latency", witness, warmup=5, iterations=iters)
    p50 = as_float(get_field(got, "p50_ms", "LatencyStats"), "p50_ms")
    expect(p50 > 0, f"p50_ms is {p50}; a real model takes time")
    expect(run.calls >= 5 + iters, calls_hint(run.calls, 5 + iters) or "fn was called too few times")
    return p50, run.timed(iters).median, run.calls


def _iterations(target_ms: float) -> int:
    """Iterations that make one measurement last about ``target_ms`` (a burst of noise touches few samples)."""
    with threads(1):
        once = time_callable(_model_call(), repeats=10, warmup=3).median_ms
    return int(min(1000, max(60, target_ms / once)))


@criterion("p1.p50_agrees")
def test_p50_agrees(grade, learner):
    """|your p50 / the grader's clock on the same calls - 1|, median over 5 rounds (up to 9 while undecided).

    The model call handed to your ``measure_latency`` is a :class:`~graders.harness.Witness`: the grader
    times every call of it with its own clock. Each round compares your p50 with the median of the
    grader's times of the calls you timed (the last ``iterations``), so a machine that changes speed
    moves both sides alike and cannot fail you. The verdict reads the median round; while the
    median's confidence interval straddles the threshold, two more rounds are taken. The spread of the
    grader's own per-round p50s is the machine's noise in the same windows (reported).
    """
    call = Witness(_model_call())
    iters = _iterations(300)
    yours, truth, calls = [], [], []

    def one_round():
        y, t, c = _witnessed_p50(learner, call, iters)
        yours.append(y), truth.append(t), calls.append(c)

    with threads(1):
        for _ in range(ROUNDS):
            one_round()
        while len(yours) < MAX_ROUNDS:
            _, interval = ratio_disagreement(summarize([y / t for y, t in zip(yours, truth)]))
            if not straddles(interval, grade.thresholds.pass_):
                break
            one_round(), one_round()
    r = summarize([y / t for y, t in zip(yours, truth)])
    value, interval = ratio_disagreement(r)
    machine = summarize(truth)
    grade.record(value, interval=interval, noise=machine.noise,
                 hint=timed_region_hint(r.median) or calls_hint(max(calls), 5 + iters),
                 message=f"your p50 {np.median(yours):.3f} ms vs the grader's clock on the same calls "
                         f"{np.median(truth):.3f} ms ({r.n} rounds); the machine's own p50 varied "
                         f"{machine.noise:.1%} between rounds",
                 details={"ratios": r.samples, "grader_p50_ms": truth, "your_p50_ms": yours, "rounds": r.n,
                          "calls_per_round": calls, "iterations": iters,
                          "samples": {"your p50 / grader p50 of the same calls": r.samples}, "samples_unit": "x"})


@criterion("p1.run_to_run")
def test_run_to_run(grade, learner):
    """Your method's own run-to-run variation: CV over 5 runs of your p50 / the grader's p50 of the same calls.

    The seed asks for latency "with < 5 % variance". On a shared machine the machine varies more than
    that between runs, and a correct timer faithfully reports it; so the machine's part is divided
    out: each of your 5 runs is witnessed by the grader's clock (the same calls, not a neighbour run),
    and what varies in ``your p50 / the grader's p50 of the same calls`` is your method alone: extra
    work in the timed region, a statistic that outliers move, a clock that is not wall time. The
    figure is the robust CV (1.4826 * MAD / median) of those ratios; its interval reaches the plain
    CV. The raw CV of your p50s and the machine's own run-to-run noise are reported beside it.
    """
    call = Witness(_model_call())
    iters = _iterations(300 if grade.quick else 500)
    yours, truth, calls = [], [], []
    with threads(1):  # one thread: a neighbour stealing a core cannot shift the whole timing
        for _ in range(5):
            y, t, c = _witnessed_p50(learner, call, iters)
            yours.append(y), truth.append(t), calls.append(c)
    ys, machine = summarize(yours), summarize(truth)
    ratios = summarize([y / t for y, t in zip(yours, truth)])
    cv, plain = ratios.robust_cv * 100, ratios.cv * 100
    details = {"your_p50_ms": yours, "grader_p50_ms": truth, "method_robust_cv_pct": cv, "method_cv_pct": plain,
               "your_raw_cv_pct": ys.cv * 100, "machine_noise": machine.noise, "iterations_per_run": iters,
               "calls_per_run": calls,
               "samples": {"your p50 / grader p50 of the same calls": ratios.samples}, "samples_unit": "x"}
    # Gate: a steady figure of the wrong thing (say, two calls of fn per sample) must not earn credit.
    off = abs(ratios.median - 1)
    if off > 0.25:
        grade.fail(f"your p50 ({ys.median:.3f} ms) is {off:.0%} away from the grader's clock on the same calls "
                   f"({machine.median:.3f} ms): the timed region is not one call of fn", value=cv, details=details,
                   hint=timed_region_hint(ratios.median))
        return
    grade.record(cv, interval=(min(cv, plain), max(cv, plain)), noise=machine.noise,
                 hint=timed_region_hint(ratios.median) or (
                     "Your p50 moves against the true time of the same calls from run to run: something in your "
                     "timed region varies between runs (state kept across calls, allocation that grows, a mean "
                     "that outliers move). Time only fn() (and sync) per sample and report the median."),
                 message=f"your method's run-to-run CV {cv:.2f}% (robust; plain {plain:.2f}%) over 5 runs; "
                         f"your raw p50s {', '.join(f'{y:.3f}' for y in yours)} ms vary {ys.cv * 100:.1f}%, "
                         f"of which the machine's own {machine.cv * 100:.1f}% is not held against you",
                 details=details)
