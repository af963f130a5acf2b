"""Task 1.3: throughput against batch size, compared with the grader's clock on the same calls."""
from __future__ import annotations

import torch

from ..checks import as_float, as_int, expect, get_field
from ..harness import Witness, ratio_disagreement, summarize, threads, time_callable
from ..plugin import criterion
from .diagnosis import calls_hint, timed_region_hint
from .workloads import busy_wait_ms, small_model

#: ``make_batch(bs)`` spins for this fraction of one forward call at batch ``bs`` (the grader's clock), so a
#: measure_throughput that builds its batch inside the timed region reads 1 / 1.5 of the grader's samples/s
#: (33 % off; the pass mark is 20 %), where a bare ``torch.randn`` was about 1 % of a call and went unseen.
#: Not a whole call (1.0): "twice too slow" reads as two predictor calls in the hints.
MAKE_BATCH_COST = 0.5


def _point(pt, bs: int) -> float:
    """Validate one ThroughputPoint for batch size ``bs``; return its samples/s."""
    got_bs = as_int(get_field(pt, "batch_size", "ThroughputPoint"), "batch_size")
    expect(got_bs == bs, f"points must follow the order of batch_sizes: got batch_size {got_bs}, expected {bs}")
    sps = as_float(get_field(pt, "samples_per_s", "ThroughputPoint"), "samples_per_s")
    lat = as_float(get_field(pt, "latency_ms", "ThroughputPoint"), "latency_ms")
    expect(sps > 0 and lat > 0, f"batch {bs}: samples_per_s and latency_ms must be positive")
    expect(abs(sps * lat / 1e3 / bs - 1) < 0.02,
           f"batch {bs}: samples_per_s ({sps:.1f}) != batch_size / latency ({bs / (lat / 1e3):.1f})")
    return sps


@criterion("p1.throughput_agrees")
def test_throughput_agrees(grade, learner):
    """Worst |your samples/s / the grader's clock on the same calls - 1| over batch sizes, 5 rounds each.

    The predictor handed to your ``measure_throughput`` is a :class:`~graders.harness.Witness`: the grader
    times every call of it with its own clock, so each round compares your samples/s with
    ``batch_size / median time of the calls you timed`` (the last ``iterations``). A machine that
    changes speed moves both sides alike. The per-size figure is the median round; its confidence
    interval gives the verdict's interval, and the spread of the grader's per-round figures is the
    machine's noise in the same windows (reported). The ``make_batch`` you are given costs
    ``MAKE_BATCH_COST`` (half) of a forward call, so building the batch inside the timed region fails.
    """
    torch.manual_seed(0)
    model = small_model()
    sizes = [1, 8] if grade.quick else [1, 4, 16]
    rounds = 5  # a median of five rounds: two bursts of noise cannot move it

    def forward(x):
        with torch.inference_mode():
            return model(x)

    predictor = Witness(forward)

    with threads(1):  # one thread: a neighbour stealing a core cannot skew the timing
        # One forward call per size on the grader's clock, with the grader's own inputs.
        once = {}
        for bs in sizes:
            x = torch.randn(bs, 3, 32, 32)
            once[bs] = time_callable(lambda: forward(x), repeats=5, warmup=2).median_ms

        def make_batch(bs: int) -> torch.Tensor:
            """A fresh batch that costs MAKE_BATCH_COST of a forward call at that size (a batch built in
            the timed region shows; an untimed one costs only wall time)."""
            x = torch.randn(bs, 3, 32, 32)
            busy_wait_ms(MAKE_BATCH_COST * once.get(bs, max(once.values())))
            return x

        # One call with every size first: the contract (one point per size, in order) is checked here.
        points = learner.call("measure_throughput", predictor, make_batch, list(sizes), warmup=3, iterations=5)
        expect(isinstance(points, (list, tuple)) and len(points) == len(sizes),
               f"measure_throughput should return one point per batch size ({len(sizes)}), got {points!r:.120}")
        for bs, pt in zip(sizes, points):
            _point(pt, bs)
        # Each measurement lasts about 0.3 s, so a burst of noise of a tenth of a second cannot move a median.
        iters = {bs: int(min(2000, max(20, 300 / once[bs]))) for bs in sizes}
        yours: dict[int, list[float]] = {bs: [] for bs in sizes}
        truth: dict[int, list[float]] = {bs: [] for bs in sizes}
        calls: dict[int, list[int]] = {bs: [] for bs in sizes}
        for _ in range(rounds):
            for bs in sizes:
                with predictor.run() as run:
                    pts = learner.call("measure_throughput", predictor, make_batch, [bs], warmup=3,
                                       iterations=iters[bs])
                expect(isinstance(pts, (list, tuple)) and len(pts) == 1,
                       f"measure_throughput([{bs}]) should return one point, got {pts!r:.120}")
                yours[bs].append(_point(pts[0], bs))
                expect(run.calls > 0, "measure_throughput never called the predictor")
                truth[bs].append(bs / (run.timed(iters[bs]).median / 1e3))
                calls[bs].append(run.calls)
    worst, interval, noise, details, msg, worst_bs = -1.0, (0.0, 0.0), 0.0, {}, "", sizes[0]
    for bs in sizes:
        r = summarize([y / t for y, t in zip(yours[bs], truth[bs])])
        g = summarize(truth[bs])
        err, iv = ratio_disagreement(r)
        noise = max(noise, g.noise)
        details[f"bs{bs}_yours_sps"], details[f"bs{bs}_grader_sps"] = summarize(yours[bs]).median, g.median
        details[f"bs{bs}_ratios"] = r.samples
        if err >= worst:
            worst, interval, worst_bs = err, iv, bs
            msg = (f"batch {bs}: yours {summarize(yours[bs]).median:.0f} samples/s, the grader's clock on the same "
                   f"calls {g.median:.0f}")
    ratio = summarize([t / y for y, t in zip(yours[worst_bs], truth[worst_bs])]).median  # > 1: yours is slower
    details["iterations"] = {str(k): v for k, v in iters.items()}
    details["your_sps"] = {str(bs): yours[bs] for bs in sizes}
    details["grader_sps"] = {str(bs): truth[bs] for bs in sizes}
    details["calls_per_round"] = {str(bs): calls[bs] for bs in sizes}
    details["samples"] = {f"batch {bs}: |yours/grader - 1| %": [abs(y / t - 1) * 100 for y, t in
                                                               zip(yours[bs], truth[bs])] for bs in sizes}
    details["samples_unit"] = "%"
    extra = max(calls[worst_bs]) - (3 + iters[worst_bs])
    grade.record(worst, message=msg, details=details, noise=noise, interval=interval,
                 hint=timed_region_hint(ratio, "predictor(batch)", one_call_each=not extra) or (
                     calls_hint(max(calls[worst_bs]), 3 + iters[worst_bs], "predictor") if extra else ""))
