"""Task 3.3: four different models served at once by the learner's ModelPool.

The grader's instrumented models log every call with the grader's clock, so "at once" is observed,
not claimed: the peak number of distinct models computing at the same moment must be four.
"""
from __future__ import annotations

import threading

import torch

from ...checks import as_int, expect, get_field
from ...harness import closed_loop, max_overlap, paired_ratio, settled
from ...plugin import criterion
from .ceiling import measure_concurrency_ceiling, share_band, share_interval
from .common import atol_for, cpu_threads, device_of, make_config, no_tf32, probe, stop
from .workloads import Instrumented, build, compare, expected_outputs, fresh_inputs, run_problem, thread_count_settles

#: Four different models, four different input shapes (a request routed to the wrong model fails).
POOL = ("digits_cnn", "digits_resnet18_40", "small_cnn", "mlp")
MBS, CLIENTS = 8, 8


class Served:
    """The learner's pool on the grader's four instrumented models, and how many requests each got."""

    def __init__(self, grade, learner):
        no_tf32(grade)
        self.dev, self.atol = device_of(grade), atol_for(grade)
        self.models, self.shapes, self.insts = {}, {}, {}
        for name in POOL:
            self.models[name], self.shapes[name] = build(name, self.dev)
            self.insts[name] = Instrumented(self.models[name], name, device=self.dev)
        config = make_config(learner, max_batch_size=MBS, max_queue_delay_ms=2, max_queue_size=1024)
        specs = [learner.call("ModelSpec", n, self.insts[n], self.shapes[n],
                              torch.float32, None, self.dev) for n in POOL]
        self.pool = learner.call("ModelPool", specs, config)
        self.sent = dict.fromkeys(POOL, 0)
        learner.call_obj(self.pool.start, what="ModelPool.start()")
        for n in POOL:
            probe(learner, lambda x, n=n: self.pool.submit(n, x), fresh_inputs(1, self.shapes[n])[0],
                  what=f"ModelPool.submit({n!r}, x)")
            self.sent[n] += 1

    def load(self, name: str, xs: torch.Tensor):
        self.sent[name] += len(xs)
        return closed_loop(lambda x: self.pool.submit(name, x), xs, concurrency=CLIENTS, total_timeout_s=60)

    def alone(self, inputs: dict[str, torch.Tensor]) -> dict:
        return {n: self.load(n, inputs[n]) for n in POOL}

    def together(self, inputs: dict[str, torch.Tensor]) -> dict:
        runs: dict = {}
        drivers = [threading.Thread(target=lambda n=n: runs.__setitem__(n, self.load(n, inputs[n])),
                                    name=f"grader-driver-{n}", daemon=True) for n in POOL]
        for t in drivers:
            t.start()
        for t in drivers:
            t.join(90)
        expect(len(runs) == len(POOL), "the pool did not answer all four models within 90 s")
        return runs

    def calibrate(self, seconds: float) -> dict[str, int]:
        """Requests per model for about ``seconds`` alone each (also the warm-up)."""
        warm = self.alone({n: fresh_inputs(48, self.shapes[n]) for n in POOL})
        return {n: int(min(1500, max(48, warm[n].throughput * seconds))) for n in POOL}

    def inputs(self, counts: dict[str, int]) -> dict[str, torch.Tensor]:
        return {n: fresh_inputs(counts[n], self.shapes[n]) for n in POOL}

    def wrong(self, runs: dict, inputs: dict) -> tuple[int, int]:
        """(failed, wrong) over every output of every model's run."""
        failed = wrong = 0
        for n, run in runs.items():
            want = expected_outputs(self.models[n], inputs[n], self.dev)
            bad, _ = compare(list(run.outputs), want, self.atol)
            failed, wrong = failed + run.failed, wrong + len([i for i in bad if run.errors[i] is None])
        return failed, wrong


def _settled_stats(learner, served, timeout_s: float = 2.0):
    """``ModelPool.stats()`` once it counts every request the grader sent, or as it stands after ``timeout_s``.

    A batcher may settle a batch's futures and count the batch a moment later; read at the instant the last answer
    arrives, an honest pool could be a batch short. Whatever it says after the wait is judged exactly.
    """
    def counted(stats) -> bool:
        try:
            return all(get_field(stats[n], "completed", "") == served.sent[n] for n in POOL)
        except Exception:  # noqa: BLE001 - a malformed stats() is judged (and reported) by the caller
            return True

    return settled(lambda: learner.call_obj(served.pool.stats, what="ModelPool.stats()"), counted, timeout_s)


@criterion("p3.batching.pool_correct")
def test_pool_correct(grade, learner):
    """All four models at once: every output right, all four computing together, honest stats, and
    no thread left running after ``close()``."""
    baseline = threading.active_count()
    with cpu_threads(grade):
        served = Served(grade, learner)
        try:
            counts = served.calibrate(0.25 if grade.quick else 0.4)
            mark = {n: len(served.insts[n].calls) for n in POOL}
            inputs = served.inputs(counts)
            runs = served.together(inputs)
            stats = _settled_stats(learner, served)
        finally:
            stop(served.pool)
    left = thread_count_settles(baseline) - baseline
    failed, wrong = served.wrong(runs, inputs)
    intervals = [iv for n in POOL for iv in served.insts[n].intervals()[mark[n]:]]
    peak, shared = max_overlap(intervals)
    problems = []
    expect(isinstance(stats, dict), f"ModelPool.stats() should return a dict name -> BatcherStats, got {type(stats).__name__}")
    for n in POOL:
        expect(n in stats, f"ModelPool.stats() has no entry for {n!r}")
        done = as_int(get_field(stats[n], "completed", f"stats()[{n!r}]"), f"stats()[{n!r}].completed")
        calls = as_int(get_field(stats[n], "batches", f"stats()[{n!r}]"), f"stats()[{n!r}].batches")
        if done != served.sent[n] or calls != len(served.insts[n].calls):
            problems.append(f"stats()[{n!r}] says completed={done}, batches={calls}; the grader sent "
                            f"{served.sent[n]} and saw {len(served.insts[n].calls)} model calls")
    if left > 0:
        problems.append(f"{left} threads still running after ModelPool.close(): close every batcher and join")
    if peak < len(POOL):
        problems.append(f"at most {peak} of the {len(POOL)} models were computing at the same moment: each "
                        f"model needs its own worker")
    details = {"requests": {n: len(inputs[n]) for n in POOL}, "failed": failed, "wrong": wrong,
               "peak_models_at_once": peak, "share_of_busy_time_with_2_or_more": shared,
               "model_calls": {n: len(served.insts[n].calls) for n in POOL}, "problems": problems}
    if problems:
        grade.fail("; ".join(problems), value=failed + wrong, details=details)
        return
    total = sum(len(inputs[n]) for n in POOL)
    grade.record(failed + wrong, details=details,
                 message=f"{total - failed - wrong}/{total} answers right across {len(POOL)} models "
                         f"({', '.join(f'{n} {len(inputs[n])}' for n in POOL)}); all {peak} computing at once, "
                         f"2+ models overlapping {shared:.0%} of the busy time")


@criterion("p3.batching.pool_throughput")
def test_pool_throughput(grade, learner, benchmark):
    """The pool's gain from serving four models at once, as a share of what this machine allows.

    Pool: aggregate throughput with all four models at once over the same requests one model after
    another, the same pool serving both; per model about the same time's worth of requests;
    interleaved; the median of the paired ratios of wall-clock times. Ceiling (``ceiling.py``): the
    same models called directly by four grader threads at batch MBS, over one after another.
    Graded: 100 x pool ratio / ceiling, so a 2-core machine's limit is not held against the pool.
    Every request of every timed run, on both sides, must get the model's answer to its input (``atol_for``).
    """
    with cpu_threads(grade):
        served = Served(grade, learner)
        try:
            counts = served.calibrate(0.25 if grade.quick else 0.35)
            # The machine's own gain from computing the four models at once (the pool idles meanwhile).
            even = {n: max(MBS, counts[n] // MBS * MBS) for n in POOL}
            ceiling = measure_concurrency_ceiling(
                {n: (lambda x, m=served.models[n]: m(x.to(served.dev))) for n in POOL},
                lambda: served.inputs(even), batch_size=MBS, pairs=3 if grade.quick else 5)

            def sequential(inputs):
                return served.alone(inputs)

            def concurrent(inputs):
                return served.together(inputs)

            checked = [0]

            def every_answer(alone: dict, together: dict, args: tuple) -> str | None:
                """Every request of both timed runs against the model run by the grader on that input."""
                inputs = args[0]
                for n in POOL:
                    want = expected_outputs(served.models[n], inputs[n], served.dev)
                    for how, runs in (("one model after another", alone), ("all four at once", together)):
                        checked[0] += len(inputs[n])
                        problem = run_problem(runs[n], want, served.atol)
                        if problem:
                            return f"{n}, {how}: {problem}"
                return None

            res = paired_ratio(sequential, concurrent, threshold=share_band(grade.thresholds.pass_, ceiling.interval),
                               make_inputs=lambda: (served.inputs(counts),),
                               pairs=2 if grade.quick else 3, warmup=0, max_attempts=2, benchmark=benchmark,
                               check=every_answer)
        finally:
            stop(served.pool)
    share = 100.0 * res.median / ceiling.ratio
    details = {**res.details("one_after_another", "all_at_once"), **ceiling.details(), "pool_concurrency_x": res.median,
               "pool_share_pct": share, "requests": counts, "checked_outputs": checked[0],
               "sample_marks": {f"the machine's own gain {ceiling.ratio:.2f}x": ceiling.ratio,
                                f"pass ({grade.thresholds.pass_:g} % of it)": grade.thresholds.pass_ / 100 * ceiling.ratio,
                                f"full marks ({grade.thresholds.full:g} % of it)":
                                    grade.thresholds.full / 100 * ceiling.ratio}}
    total = sum(counts.values())
    interval = share_interval(res.median, res.interval, ceiling.ratio, ceiling.interval)
    grade.record(share, interval=interval, noise=res.noise, details=details,
                 message=f"your pool reached {share:.0f} % of what serving these {len(POOL)} models at once gains on "
                         f"this machine: {res.median:.2f}x of a possible {ceiling.ratio:.2f}x (the models called "
                         f"directly in {len(POOL)} threads); {total} requests: all at once {res.b_ms.median:.0f} ms, "
                         f"one after another {res.a_ms.median:.0f} ms")
