"""Task 1.5: the per-operator profile names the operator that really dominates."""
from __future__ import annotations

import random

import torch
from torch.profiler import ProfilerActivity, profile

from ..checks import as_float, expect, get_field
from ..plugin import criterion
from .workloads import dominant_op_model


def _grader_profile(model, x) -> list[tuple[str, float]]:
    with torch.inference_mode():
        for _ in range(2):
            model(x)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(3):
                model(x)
    rows = [(e.key, e.self_cpu_time_total) for e in prof.key_averages()]
    return sorted(rows, key=lambda r: -r[1])


@criterion("p1.dominant_op")
def test_dominant_op(grade, learner):
    kind = random.choice(["linear", "conv"])  # chosen per grade: hard-coding a name cannot pass
    model, x = dominant_op_model(kind)
    mine = _grader_profile(model, x)
    top, second = mine[0], mine[1]
    ops = learner.call("top_operators", model, x, k=5)
    expect(isinstance(ops, (list, tuple)) and len(ops) >= 1, f"top_operators returned {ops!r:.100}, expected a list of OpStat")
    names = [str(get_field(o, "name", "OpStat")) for o in ops]
    times = [as_float(get_field(o, "self_time_ms", "OpStat"), "self_time_ms") for o in ops]
    expect(len(ops) <= 5, f"asked for k=5 operators, got {len(ops)}")
    expect(all(a >= b for a, b in zip(times, times[1:])), "operators must be sorted by self time, largest first")
    expect(times[0] > 0, "self_time_ms of the top operator must be positive")
    found = 1.0 if names[0] == top[0] else 0.0
    grade.record(found, message=f"{kind}-heavy model: your top operator {names[0]!r}, the grader's {top[0]!r} "
                                f"({top[1] / 1e3:.1f} ms self, next {second[0]!r} {second[1] / 1e3:.1f} ms)",
                 details={"model": kind, "your_top5": names, "grader_top3": [n for n, _ in mine[:3]]})
