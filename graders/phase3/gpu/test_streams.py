"""Task 3.9: four different models run by the learner's ``run_on_streams``, each on its own CUDA stream.

Graded: how many of the four outputs are wrong (each against that model run by the grader on the same
fresh input), with the report checked for what it must say and the models seen running on at least
four different streams (each model is wrapped in a spy that notes the stream every forward runs on).

The speed-up is reported, not graded: four small models at batch 8 leave the GPU partly idle, but the
gain depends on the GPU and on how fast one Python thread can queue kernels. Beside the learner's own
figures the grader measures its own: a call ``run_on_streams(..., repeats=R, warmup=0)`` runs R
concurrent and R sequential rounds, so the grader times that whole call against 2R sequential rounds
of its own (interleaved, on the same fresh inputs, every call's outputs checked) and reads off the
concurrent share: ``concurrent = call / R - sequential``.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ...checks import as_float, as_int, get_field
from ...harness import cuda_sync, paired_ratio
from ...plugin import criterion
from ..batching.common import no_tf32
from ..batching.test_pool import POOL
from ..batching.workloads import build, fresh_inputs

#: Requests per model in one round: small batches, where one model alone leaves most of the GPU idle.
BATCH = 8
#: Rounds per timed call (warmup=0): the call runs REPEATS concurrent and REPEATS sequential rounds.
REPEATS = 10
ATOL = 1e-3


class StreamSpy(nn.Module):
    """A model that notes the CUDA stream each of its forwards is queued on (the raw ``cudaStream_t``)."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner
        self.seen: set[int] = set()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        device = x.device if x.is_cuda else None
        self.seen.add(int(torch.cuda.current_stream(device).cuda_stream))
        return self.inner(x)


def _wrong(outputs, want: list[torch.Tensor]) -> tuple[dict[str, str], float]:
    """``{model name: what is wrong}`` for each output missing, mis-shaped or off by more than ATOL; the worst difference."""
    if not isinstance(outputs, (list, tuple)) or len(outputs) != len(want):
        got = f"{len(outputs)} items" if isinstance(outputs, (list, tuple)) else type(outputs).__name__
        return dict.fromkeys(POOL, f"report.outputs should be a list of {len(want)} tensors, one per model, "
                                   f"got {got}"), math.inf
    bad, worst = {}, 0.0
    for name, y, w in zip(POOL, outputs, want):
        if not isinstance(y, torch.Tensor) or tuple(y.shape) != tuple(w.shape):
            what = f"shape {tuple(y.shape)}" if isinstance(y, torch.Tensor) else type(y).__name__
            bad[name] = f"output is {what}, expected a tensor of shape {tuple(w.shape)}"
            continue
        d = float((y.detach().float().cpu() - w).abs().max())
        worst = max(worst, d) if d == d else math.inf
        if not d <= ATOL:   # NaN counts as wrong
            bad[name] = f"off by {d:.3g} from the model run by the grader on the same input (allowed {ATOL:g})"
    return bad, worst


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _report_problems(report, n: int) -> tuple[list[str], dict]:
    """What the report says, and what is wrong with it (fields, units, the speed-up's arithmetic)."""
    conc = as_float(get_field(report, "concurrent_ms", "StreamsReport"), "report.concurrent_ms")
    seq = as_float(get_field(report, "sequential_ms", "StreamsReport"), "report.sequential_ms")
    speedup = as_float(get_field(report, "speedup", "StreamsReport"), "report.speedup")
    streams = as_int(get_field(report, "streams", "StreamsReport"), "report.streams")
    problems = []
    if conc <= 0 or seq <= 0:
        problems.append(f"report.concurrent_ms ({conc:g}) and sequential_ms ({seq:g}) must be > 0 ms per round")
    elif abs(speedup - seq / conc) > 0.01 * seq / conc:
        problems.append(f"report.speedup is {speedup:.3g}, but sequential_ms / concurrent_ms = {seq / conc:.3g}")
    if streams != n:
        problems.append(f"report.streams is {streams}: each of the {n} models runs on its own stream")
    return problems, {"your_concurrent_ms": conc, "your_sequential_ms": seq, "your_speedup": speedup, "your_streams": streams}


@criterion("p3.gpu.streams")
def test_streams(grade, learner, benchmark):
    """Four different models on their own streams: every output right, four streams seen, speed reported."""
    no_tf32(grade)
    models, shapes = [], []
    for name in POOL:
        model, shape = build(name, "cuda")
        models.append(model)
        shapes.append(shape)
    spies = [StreamSpy(m).eval() for m in models]

    def fresh() -> list[torch.Tensor]:
        return [fresh_inputs(BATCH, s).to("cuda") for s in shapes]

    def truth(xs: list[torch.Tensor]) -> list[torch.Tensor]:
        with torch.inference_mode():
            return [m(x).float().cpu() for m, x in zip(models, xs)]

    def call(xs: list[torch.Tensor], **kw):
        return learner.call("run_on_streams", spies, xs, device="cuda", **kw)

    # 1. Correctness on fresh inputs (the learner's defaults), then again on other fresh inputs.
    xs = fresh()
    report = call(xs)
    cuda_sync()
    first, worst = _wrong(get_field(report, "outputs", "StreamsReport"), truth(xs))
    problems, yours = _report_problems(report, len(POOL))
    xs2 = fresh()
    second, worst2 = _wrong(get_field(call(xs2, repeats=2, warmup=1), "outputs", "StreamsReport"), truth(xs2))
    wrong = [f"{name}: {why}" for name, why in first.items()] + \
            [f"{name} (second call, other inputs): {why}" for name, why in second.items()]
    seen = set().union(*(s.seen for s in spies))
    if len(seen) < len(POOL):
        problems.append(f"the {len(POOL)} models ran on {len(seen)} CUDA stream(s) in all: give each model its own "
                        f"torch.cuda.Stream and run it inside `with torch.cuda.stream(s):`")
    n_wrong = len(set(first) | set(second))
    details = {"models": list(POOL), "batch_size": BATCH, "wrong_models": n_wrong, "max_abs_diff": _finite(max(worst, worst2)),
               "streams_seen": len(seen), **yours, "problems": problems + wrong}
    if wrong:
        grade.record(n_wrong, details=details, message=f"{n_wrong} of {len(POOL)} models got a wrong output: {wrong[0]}")
        return
    if problems:
        grade.fail("; ".join(problems), value=0, details=details)
        return

    # 2. The grader's own timing: 2 x REPEATS sequential rounds against one call of REPEATS + REPEATS rounds.
    def sequential(xs: list[torch.Tensor]) -> list[torch.Tensor]:
        with torch.inference_mode():
            for _ in range(2 * REPEATS):
                outs = [m(x) for m, x in zip(spies, xs)]
            return [y.float().cpu() for y in outs]

    run_on_streams = learner.attr("run_on_streams")   # timed: no integrity check inside the clock

    def learners_call(xs: list[torch.Tensor]):
        return learner.call_obj(run_on_streams, spies, xs, device="cuda", repeats=REPEATS, warmup=0,
                                what="run_on_streams(...)")

    def every_output(grader_outs, report, args) -> str | None:
        bad, _ = _wrong(get_field(report, "outputs", "StreamsReport"), grader_outs)
        return "; ".join(f"{name}: {why}" for name, why in bad.items()) or None

    res = paired_ratio(sequential, learners_call, make_inputs=lambda: (fresh(),), pairs=5 if grade.quick else 12,
                       warmup=1, max_attempts=2, sync=cuda_sync, benchmark=benchmark, check=every_output)
    seq_ms = res.a_ms.median / (2 * REPEATS)
    call_ms = res.b_ms.median
    conc_ms = call_ms / REPEATS - seq_ms
    details.update({"grader_sequential_ms": seq_ms, "grader_call_ms": call_ms, "grader_repeats": REPEATS,
                    "grader_concurrent_ms": conc_ms if conc_ms > 0 else None,
                    "grader_speedup": seq_ms / conc_ms if conc_ms > 0 else None, "pairs": res.ratios.n})
    grader = (f"the grader measured {conc_ms:.3f} vs {seq_ms:.3f} ms ({seq_ms / conc_ms:.2f}x)" if conc_ms > 0 else
              f"the grader measured your call of {REPEATS} + {REPEATS} rounds at {call_ms:.2f} ms, no more than "
              f"{REPEATS} sequential rounds of its own ({REPEATS * seq_ms:.2f} ms): are the sequential rounds timed?")
    grade.record(0, details=details,
                 message=f"all {len(POOL)} models right ({', '.join(POOL)}; batch {BATCH}), run on {len(seen)} CUDA streams; "
                         f"per round you report {yours['your_concurrent_ms']:.3f} ms on streams vs "
                         f"{yours['your_sequential_ms']:.3f} ms one after another ({yours['your_speedup']:.2f}x), {grader}")
