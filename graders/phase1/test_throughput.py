"""Task 1.3: throughput against batch size, compared with the grader's own measurement."""
from __future__ import annotations

import torch

from ..checks import as_float, as_int, expect, get_field
from ..harness import alternating, ratio_disagreement, summarize, threads, time_callable
from ..plugin import criterion
from .workloads import small_model


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
def test_throughput_agrees(grade, learner, timer):
    """Worst |yours/grader's - 1| over batch sizes, from interleaved rounds of about 0.3 s each.

    Each round times one batch size on the grader's clock and with your ``measure_throughput``
    (order alternating), so both sides see the same machine within a fraction of a second. The
    per-size figure is the median ratio over the rounds; a batch size whose rounds disagree (IQR/median
    of the ratios > 0.10) is measured once more and the quieter attempt kept. The rounds' spread gives
    the interval and the noise flag, so a burst of noise on a shared machine makes the verdict
    inconclusive instead of failing you.
    """
    torch.manual_seed(0)
    model = small_model()
    sizes = [1, 8] if grade.quick else [1, 4, 16]
    rounds = 5  # a median of five rounds: two bursts of noise cannot move it

    def predictor(x):
        with torch.inference_mode():
            return model(x)

    def make_batch(bs: int) -> torch.Tensor:
        return torch.randn(bs, 3, 32, 32)

    with threads(1):  # one thread on both sides: a neighbour stealing a core cannot skew one side
        # One call with every size first: the contract (one point per size, in order) is checked here.
        points = learner.call("measure_throughput", predictor, make_batch, list(sizes), warmup=3, iterations=5)
        expect(isinstance(points, (list, tuple)) and len(points) == len(sizes),
               f"measure_throughput should return one point per batch size ({len(sizes)}), got {points!r:.120}")
        for bs, pt in zip(sizes, points):
            _point(pt, bs)
        # Each measurement lasts about 0.3 s, so a burst of noise of a tenth of a second cannot move a median.
        iters = {}
        for bs in sizes:
            x = make_batch(bs)
            once = time_callable(lambda: predictor(x), repeats=5, warmup=2).median_ms
            iters[bs] = int(min(2000, max(20, 300 / once)))
        yours: dict[int, list[float]] = {}
        mine: dict[int, list[float]] = {}
        for bs in sizes:
            x = make_batch(bs)
            best = None
            for _attempt in range(2):  # a noisy attempt is measured once more; the quieter one is kept
                ys, ms = [], []

                def grader_run():
                    t = timer.time(lambda: predictor(x), repeats=iters[bs], warmup=3)
                    ms.append(bs / (t.median_ms / 1e3))

                def learner_run():
                    pts = learner.call("measure_throughput", predictor, make_batch, [bs], warmup=3,
                                       iterations=iters[bs])
                    expect(isinstance(pts, (list, tuple)) and len(pts) == 1,
                           f"measure_throughput([{bs}]) should return one point, got {pts!r:.120}")
                    ys.append(_point(pts[0], bs))

                alternating(grader_run, learner_run, rounds)
                spread = summarize([y / m for y, m in zip(ys, ms)]).spread
                if best is None or spread < best[0]:
                    best = (spread, ys, ms)
                if spread <= 0.10:
                    break
            _, yours[bs], mine[bs] = best
    worst, lo, hi, noisy, details, msg = -1.0, 0.0, 0.0, False, {}, ""
    for bs in sizes:
        r = summarize([y / m for y, m in zip(yours[bs], mine[bs])])
        g = summarize(mine[bs])
        err, interval = ratio_disagreement(r)
        details[f"bs{bs}_yours_sps"], details[f"bs{bs}_grader_sps"] = summarize(yours[bs]).median, g.median
        details[f"bs{bs}_ratios"] = r.samples
        if err >= worst:
            worst, msg = err, f"batch {bs}: yours {summarize(yours[bs]).median:.0f} samples/s, grader {g.median:.0f}"
            lo, hi = interval
            noisy = max(r.spread, g.spread) > 0.10
    details["iterations"] = {str(k): v for k, v in iters.items()}
    details["your_sps"] = {str(bs): yours[bs] for bs in sizes}
    details["grader_sps"] = {str(bs): mine[bs] for bs in sizes}
    details["samples"] = {f"batch {bs}: |yours/grader - 1| %": [abs(y / m - 1) * 100 for y, m in
                                                               zip(yours[bs], mine[bs])] for bs in sizes}
    details["samples_unit"] = "%"
    grade.record(worst, message=msg, details=details, noisy=noisy, interval=(lo, hi))
