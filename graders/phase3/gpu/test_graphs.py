"""Task 3.6: the learner's CUDA graph of the digits CNN at batch 1, against the same model run eagerly.

Correctness gates speed. Right after capture the grader feeds the learner's ``GraphedModel`` several
fresh inputs and keeps every tensor it returned, then compares each with the eager model on its own
input: a graph that ignores its input (stale output) or hands back its static output buffer (every
kept tensor then holds the last answer) fails here. A graph must also refuse an input of another
shape or dtype with ValueError. Then eager and graphed calls are timed in pairs, interleaved, on the
same fresh inputs, each call synchronised, and every timed output is checked again.
"""
from __future__ import annotations

import torch

from ...checks import expect
from ...harness import cuda_sync, paired_ratio
from ...plugin import criterion
from ..batching.common import no_tf32
from ..batching.workloads import build, fresh_inputs

MODEL, BATCH = "digits_cnn", 1
#: Eager and graphed float32 (TF32 off) differ by kernel choice at most.
ATOL = 1e-3
#: Fresh inputs fed one after another right after capture, every returned tensor kept.
KEPT = 4


def _problem(got, want: torch.Tensor, what: str) -> str | None:
    """One line when ``got`` is not a tensor of ``want``'s shape within ATOL of it, else None."""
    if not isinstance(got, torch.Tensor):
        return f"{what} returned {type(got).__name__}, expected a torch.Tensor"
    if tuple(got.shape) != tuple(want.shape):
        return f"{what} returned shape {tuple(got.shape)}, the eager model {tuple(want.shape)}"
    d = float((got.detach().float().cpu() - want.float().cpu()).abs().max())
    if not d <= ATOL:   # NaN counts as wrong
        return f"{what} is off by {d:.3g} from the eager model on the same input (allowed {ATOL:g})"
    return None


def _refuses(graphed, x: torch.Tensor, what: str) -> str | None:
    """None when ``graphed(x)`` raises ValueError, else what it did instead."""
    try:
        graphed(x)
    except ValueError:
        return None
    except Exception as e:  # noqa: BLE001 - the learner's code: reported, never fatal
        return f"GraphedModel({what}) raised {type(e).__name__}, expected ValueError naming the captured shape and dtype"
    return (f"GraphedModel({what}) returned an answer: a graph replays one shape and dtype, so anything else must "
            f"raise ValueError")


@criterion("p3.gpu.cuda_graph_latency")
def test_cuda_graph_latency(grade, learner, benchmark):
    """Eager p50 latency over the learner's graphed p50, the digits CNN at batch 1, outputs checked throughout."""
    no_tf32(grade)
    model, shape = build(MODEL, "cuda")
    example = fresh_inputs(BATCH, shape).to("cuda")

    def fresh() -> torch.Tensor:
        return fresh_inputs(BATCH, shape).to("cuda")

    def eager(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return model(x)

    graphed = learner.call("GraphedModel", model, example)
    expect(callable(graphed), f"GraphedModel(...) is not callable (got {type(graphed).__name__})")

    def mine(x: torch.Tensor):
        return learner.call_obj(graphed, x, what="GraphedModel(x)")

    # 1. Fresh inputs after capture, every returned tensor kept until all are compared.
    xs = [fresh() for _ in range(KEPT)]
    got = [mine(x) for x in xs]
    cuda_sync()
    want = [eager(x).float().cpu() for x in xs]
    problems = [p for i, (g, w) in enumerate(zip(got, want)) if (p := _problem(g, w, f"call {i + 1} of {KEPT}"))]
    tensors = [g for g in got if isinstance(g, torch.Tensor)]
    shared = len({g.untyped_storage().data_ptr() for g in tensors}) < len(tensors)
    if problems and shared:
        problems.append("the tensors returned by different calls share one buffer: the next replay overwrites "
                        "static_output, so return static_output.clone()")
    elif problems:
        problems.append("is each input copied into static_input (copy_) before graph.replay()?")
    # 2. Another shape or dtype is refused (copy_ would broadcast or silently convert it).
    for x, what in ((torch.zeros(BATCH + 1, *shape, device="cuda"), f"x of batch {BATCH + 1}"),
                    (example.double(), "a float64 x")):
        if (p := _refuses(graphed, x, what)):
            problems.append(p)
    details = {"model": MODEL, "batch_size": BATCH, "checked_outputs": KEPT, "problems": problems}
    if problems:
        grade.fail("; ".join(problems), details=details)
        return

    # 3. Paired timing on fresh inputs, each call synchronised, every output checked after the clock.
    def same_answer(out_eager, out_mine, args) -> str | None:
        return _problem(out_mine, out_eager, "a timed GraphedModel(x)")

    res = paired_ratio(eager, mine, make_inputs=lambda: (fresh(),), pairs=60 if grade.quick else 200, warmup=20,
                       max_attempts=3, sync=cuda_sync, benchmark=benchmark, threshold=grade.thresholds.pass_,
                       check=same_answer)
    eager_p50, graph_p50 = res.a_ms.median, res.b_ms.median
    details.update({**res.details("eager", "graphed"), "checked_outputs": KEPT + res.ratios.n + 20 * res.attempts,
                    "p50_ratio": eager_p50 / graph_p50 if graph_p50 > 0 else None,
                    "sample_marks": {f"pass ({grade.thresholds.pass_:g}x)": grade.thresholds.pass_,
                                     f"full marks ({grade.thresholds.full:g}x)": grade.thresholds.full}})
    grade.record(res.median, interval=res.interval, noise=res.noise, details=details,
                 message=f"{MODEL} at batch {BATCH}: eager p50 {eager_p50:.3f} ms, your CUDA graph p50 {graph_p50:.3f} ms "
                         f"(each call synchronised): {res.median:.2f}x faster (median of {res.ratios.n} paired ratios); "
                         f"every output within {ATOL:g} of the eager model")
