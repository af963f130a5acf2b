"""A fixed workload of the grader's, timed before the learner's code exists and again after each timed criterion.

A submission could slow the grader's side of a comparison without replacing anything the integrity checks
watch: a native patch, a background thread that spins only while the grader's baseline runs, a changed
library setting. Then the grader's own work runs slower in the learner's process than it did in the same
process before the learner's package was imported, when nothing of the learner's existed. The grading
child times :func:`workload` once before the import (the clean figure, signed before any learner code can
run) and again at the end of every criterion that timed something; the parent compares the two
(``graders.runner``) and flags the criterion when the grader's own work became more than
:data:`SLOWDOWN_FLAG` times slower. It is a flag for a person, not a fail: a busy neighbour on the machine
can slow the second figure too, and the report gives both.
"""
from __future__ import annotations

import statistics

__all__ = ["SLOWDOWN_FLAG", "workload_ms"]

#: The grader's own workload this many times slower after the learner's code ran: flagged.
SLOWDOWN_FLAG = 2.0

_MODEL = None


def _model():
    global _MODEL
    if _MODEL is None:
        import torch
        from torch import nn

        g = torch.Generator().manual_seed(0)
        model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(),
                              nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(256, 256), nn.GELU(), nn.Linear(256, 10))
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)
        _MODEL = (model.eval(), torch.randn(8, 3, 32, 32, generator=g))
    return _MODEL


def workload_ms(repeats: int = 9) -> float:
    """Median milliseconds of one forward pass of a fixed small CNN (batch 8, 32x32), one thread, the grader's clock."""
    import torch

    from ..harness import threads
    from ..harness.timing import now_ns

    model, x = _model()
    samples = []
    with threads(1), torch.inference_mode():
        for i in range(repeats + 2):
            t0 = now_ns()
            model(x)
            if i >= 2:
                samples.append((now_ns() - t0) / 1e6)
    return statistics.median(samples)
