"""Task 2.14: 2:4 semi-structured sparsity: the exact pattern anywhere; the sparse kernels' speed on a GPU."""
from __future__ import annotations

import copy
import random

import torch
from torch import nn

from ...checks import as_tensor, expect
from ...harness import paired_ratio
from ...plugin import criterion
from .workloads import learner_timing, sqnr, state_snapshot, unchanged

#: The sparse model's outputs must stay this close to the grader's dense FP16 model with the same 2:4 weights.
GATE_SQNR_DB = 30.0
#: The (rows, columns) a Linear's weight must tile by for the 2:4 sparse kernels (torch's minimum for FP16).
TILE = (32, 64)


def _eligible(m: nn.Module) -> bool:
    """The grader's own rule: an nn.Linear whose weight [out, in] tiles by ``TILE``."""
    return isinstance(m, nn.Linear) and m.out_features % TILE[0] == 0 and m.in_features % TILE[1] == 0


def _mask(w: torch.Tensor) -> torch.Tensor:
    """The grader's own 2:4 mask: per group of four consecutive weights in a row, the two largest |w|."""
    g = w.detach().abs().reshape(-1, 4)
    order = g.argsort(dim=1, descending=True)
    mask = torch.zeros_like(g, dtype=torch.bool)
    mask.scatter_(1, order[:, :2], True)
    return mask.reshape(w.shape)


def _mlp(seed: int, width: int, depth: int = 3) -> nn.Sequential:
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Linear(width if i == 0 else 4 * width, 4 * width), nn.GELU()]
    return nn.Sequential(*layers, nn.Linear(4 * width, width), nn.Linear(width, 10)).eval()


@criterion("p2.compression.two_four_pattern")
def test_two_four_pattern(grade, learner):
    seed = random.SystemRandom().randrange(2**31)
    gen = torch.Generator().manual_seed(seed)
    wrong, total, problems = 0, 0, []
    for shape in ((64, 128), (96, 64), (8, 4)):
        w = torch.randn(shape, generator=gen)
        got = learner.call("two_four_mask", w.clone())
        expect(isinstance(got, torch.Tensor) and got.dtype == torch.bool,
               f"two_four_mask should return a bool tensor, got {getattr(got, 'dtype', type(got).__name__)}")
        got = got.cpu()
        expect(got.shape == w.shape, f"two_four_mask's result has shape {tuple(got.shape)}, expected {tuple(w.shape)}")
        wrong += int((got != _mask(w)).sum())
        total += w.numel()
    # apply_two_four on a model: eligible Linears follow the pattern, the rest untouched.
    model = _mlp(seed, 64)
    model.append(nn.Linear(10, 10))     # 10 is no multiple of the tile: stays dense
    before = state_snapshot(model)
    pruned = learner.call("apply_two_four", model)
    expect(isinstance(pruned, nn.Module), "apply_two_four should return an nn.Module")
    expect(unchanged(model, before), "apply_two_four changed the model it was given: prune a deep copy")
    old, new = dict(model.named_modules()), dict(pruned.named_modules())
    expect(old.keys() == new.keys(), "apply_two_four changed the model's structure")
    for name, m in old.items():
        if not isinstance(m, nn.Linear):
            continue
        w0, w1 = m.weight.detach(), new[name].weight.detach()
        eligible = _eligible(m)
        want = w0 * _mask(w0) if eligible else w0
        bad = int((w1 != want).sum())
        if bad:
            problems.append(f"layer {name} ({m.out_features}x{m.in_features}, "
                            f"{'eligible' if eligible else 'not eligible: must stay dense'}): {bad} weights differ")
        wrong += bad
        total += w0.numel()
        if not torch.equal(new[name].bias, m.bias):
            problems.append(f"layer {name}: bias changed")
    pct = 100.0 * wrong / total
    grade.record(pct, details={"wrong_values": wrong, "checked_values": total, "problems": problems[:5]},
                 message=(f"2:4 masks and pruned layers exact on {total:,} values" if not wrong else
                          f"{wrong:,} of {total:,} values differ from the 2:4 pattern: "
                          + "; ".join(problems[:2] or ["the masks differ: keep the two largest |w| of every "
                                                        "group of four consecutive columns"])))


@criterion("p2.compression.semi_structured_speedup")
def test_semi_structured_speedup(grade, learner, benchmark):
    """An MLP (width 2048, hidden 8192; quick: 1024, 4096) at batch 4096, FP16 on the GPU: dense 2:4-pruned
    weights (the grader's) against the learner's semi-structured sparse copy of the same model."""
    width = 1024 if grade.quick else 2048
    seed = random.SystemRandom().randrange(2**31)
    model = _mlp(seed, width)
    sparse = learner.call("to_semi_structured", copy.deepcopy(model), "cuda", torch.float16)
    expect(isinstance(sparse, nn.Module), "to_semi_structured should return an nn.Module")
    dense = copy.deepcopy(model)
    with torch.no_grad():
        for m in dense.modules():
            if _eligible(m):
                m.weight.mul_(_mask(m.weight))
    dense = dense.to("cuda", torch.float16).eval()
    n_sparse = sum(type(p).__name__.startswith("SparseSemiStructured") for p in sparse.parameters())
    expect(n_sparse >= 4, f"not really 2:4 sparse: {n_sparse} SparseSemiStructuredTensor weights in the returned "
                          f"model, expected one per eligible Linear (4)")
    x = torch.randn(256, width, device="cuda", dtype=torch.float16)
    with torch.inference_mode():
        s = sqnr(dense(x).float().cpu(), as_tensor(learner.call_obj(sparse, x, what="your 2:4 model"), "output").float().cpu())
    if s < GATE_SQNR_DB:
        grade.fail(f"outputs differ from the dense 2:4 model (SQNR {s:.1f} dB < {GATE_SQNR_DB:g} dB): no speed credit",
                   details={"sqnr_db": s})
        return

    def run(m):
        def f(inp):
            with torch.inference_mode():
                return m(inp)
        return f

    r = learner_timing(lambda: paired_ratio(run(dense), run(sparse), threshold=grade.thresholds.pass_,
                                            make_inputs=lambda: (torch.randn(4096, width, device="cuda",
                                                                             dtype=torch.float16),),
                                            pairs=15 if grade.quick else 30, warmup=3, sync=torch.cuda.synchronize,
                                            benchmark=benchmark))
    grade.record(r.median, interval=r.interval, noise=r.noise, details={**r.details("dense", "2:4"), "sqnr_db": s},
                 message=f"FP16, batch 4096, width {width}: dense {r.a_ms.median:.2f} ms, 2:4 sparse "
                         f"{r.b_ms.median:.2f} ms (SQNR {s:.1f} dB)")
