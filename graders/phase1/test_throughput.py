"""Task 1.3: throughput against batch size, compared with the grader's own measurement."""
from __future__ import annotations

import torch

from ..checks import as_float, as_int, expect, get_field
from ..harness import threads
from ..plugin import criterion
from .workloads import small_model


@criterion("p1.throughput_agrees")
def test_throughput_agrees(grade, learner, timer):
    torch.manual_seed(0)
    model = small_model()
    sizes = [1, 8] if grade.quick else [1, 4, 16]
    iters = 15 if grade.quick else 25

    def predictor(x):
        with torch.inference_mode():
            return model(x)

    def make_batch(bs: int) -> torch.Tensor:
        return torch.randn(bs, 3, 32, 32)

    def grader_sps() -> list[float]:
        out = []
        for bs in sizes:
            x = make_batch(bs)
            out.append(bs / (timer.time(lambda: predictor(x), repeats=iters, warmup=3).median_ms / 1e3))
        return out

    with threads(1):  # one thread on both sides: a neighbour stealing a core cannot skew one side
        before = grader_sps()
        points = learner.call("measure_throughput", predictor, make_batch, list(sizes), warmup=3,
                              iterations=iters)
        after = grader_sps()
    expect(isinstance(points, (list, tuple)) and len(points) == len(sizes),
           f"measure_throughput should return one point per batch size ({len(sizes)}), got {points!r:.120}")
    worst, details, msg = 0.0, {}, ""
    for bs, pt, b, a in zip(sizes, points, before, after):
        got_bs = as_int(get_field(pt, "batch_size", "ThroughputPoint"), "batch_size")
        expect(got_bs == bs, f"points must follow the order of batch_sizes: got batch_size {got_bs}, expected {bs}")
        sps = as_float(get_field(pt, "samples_per_s", "ThroughputPoint"), "samples_per_s")
        lat = as_float(get_field(pt, "latency_ms", "ThroughputPoint"), "latency_ms")
        expect(sps > 0 and lat > 0, f"batch {bs}: samples_per_s and latency_ms must be positive")
        expect(abs(sps * lat / 1e3 / bs - 1) < 0.02,
               f"batch {bs}: samples_per_s ({sps:.1f}) != batch_size / latency ({bs / (lat / 1e3):.1f})")
        ref = (a + b) / 2
        err = abs(sps / ref - 1) * 100
        details[f"bs{bs}_yours_sps"], details[f"bs{bs}_grader_sps"] = sps, ref
        if err >= worst:
            worst, msg = err, f"batch {bs}: yours {sps:.0f} samples/s, grader {ref:.0f}"
    spread = max(abs(a / b - 1) for a, b in zip(after, before))
    grade.record(worst, message=msg, details={**details, "grader_drift": spread},
                 noisy=spread > 0.10, interval=(max(0.0, worst - 100 * spread), worst + 100 * spread))
