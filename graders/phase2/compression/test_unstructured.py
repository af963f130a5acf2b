"""Task 2.12: unstructured magnitude pruning: exactly the requested zeros, permanent, reported as counted."""
from __future__ import annotations

import copy
import random

import torch
from torch import nn

from ...checks import expect
from ...plugin import criterion
from .workloads import state_snapshot, unchanged

SCOPES = ("global", "layer")


def _model(seed: int) -> nn.Module:
    """Convolutions and Linears, one nested a level down, each layer scaled by its own power of ten so that a
    global threshold and per-layer thresholds prune very differently."""
    gen = torch.Generator().manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(3, 16, 3), nn.ReLU(), nn.Sequential(nn.Conv2d(16, 32, 3), nn.ReLU()),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 10))
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * 10 ** (2 * torch.rand(1, generator=gen) - 1))
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen))
    return model.eval()


def _layers(model: nn.Module) -> dict[str, nn.Module]:
    return {n: m for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}


def _check_scope(original: nn.Module, pruned: nn.Module, amount: float, scope: str) -> tuple[list[str], dict]:
    """Problems with one pruned copy, and the per-layer sparsities the grader counted."""
    problems: list[str] = []
    keys = list(pruned.state_dict())
    left = [k for k in keys if k.endswith(("_orig", "_mask"))]
    hooks = [n for n, m in pruned.named_modules() if m._forward_pre_hooks]
    if left or hooks:
        problems.append(f"{scope}: pruning masks left behind ({(left or hooks)[:3]}): make it permanent with "
                        f"prune.remove(module, 'weight')")
    before, after = _layers(original), _layers(pruned)
    if before.keys() != after.keys():
        return problems + [f"{scope}: the pruned model's layers {sorted(after)} differ from the original's "
                           f"{sorted(before)}"], {}
    counted, kept_min, cut_max, zeros_all, total_all = {}, {}, {}, 0, 0
    for name, m in before.items():
        w0, w1 = m.weight.detach(), after[name].weight.detach()
        if w1.shape != w0.shape:
            problems.append(f"{scope}: {name}.weight has shape {tuple(w1.shape)}, expected {tuple(w0.shape)}")
            continue
        zero = w1 == 0
        if not torch.equal(w1[~zero], w0[~zero]):
            problems.append(f"{scope}: {name}: weights that were kept changed value")
        if not torch.equal(after[name].bias.detach(), m.bias.detach()):
            problems.append(f"{scope}: {name}: the bias changed (only weights are pruned)")
        zeros, total = int(zero.sum()), w0.numel()
        counted[name] = (zeros, total)
        zeros_all, total_all = zeros_all + zeros, total_all + total
        kept_min[name] = float(w0[~zero].abs().min()) if (~zero).any() else float("inf")
        cut_max[name] = float(w0[zero].abs().max()) if zero.any() else 0.0
        if scope == "layer":
            want = round(amount * total)
            if zeros != want:
                problems.append(f"layer: {name} has {zeros} zeros of {total}, expected round({amount:.3f} * {total}) "
                                f"= {want}")
            elif cut_max[name] > kept_min[name]:
                problems.append(f"layer: {name}: a weight of |w| {cut_max[name]:.4g} was zeroed while one of "
                                f"{kept_min[name]:.4g} was kept: prune the smallest magnitudes")
    if scope == "global" and counted:
        want = round(amount * total_all)
        if zeros_all != want:
            problems.append(f"global: {zeros_all} zeros of {total_all} weights, expected round({amount:.3f} * "
                            f"{total_all}) = {want}")
        elif max(cut_max.values()) > min(kept_min.values()):
            problems.append(f"global: a weight of |w| {max(cut_max.values()):.4g} was zeroed while one of "
                            f"{min(kept_min.values()):.4g} was kept elsewhere: one threshold over all layers")
    return problems, counted


def _check_report(learner, pruned: nn.Module, counted: dict, scope: str) -> list[str]:
    report = learner.call("sparsity_report", pruned)
    try:
        theirs = {layer.name: (int(layer.zeros), int(layer.total)) for layer in report.layers}
        overall = float(report.sparsity)
    except Exception as e:
        return [f"{scope}: sparsity_report should return a SparsityReport ({type(e).__name__}: {e})"]
    problems = []
    if theirs != counted:
        wrong = sorted(set(theirs.items()) ^ set(counted.items()))[:3]
        problems.append(f"{scope}: sparsity_report says {theirs}, the grader counted {counted} (differ at {wrong})")
    zeros, total = sum(z for z, _ in counted.values()), sum(t for _, t in counted.values())
    if total and abs(overall - zeros / total) > 1e-12:
        problems.append(f"{scope}: sparsity_report(...).sparsity is {overall:.6f}, the grader counted "
                        f"{zeros / total:.6f}")
    return problems


@criterion("p2.compression.sparsity_exact")
def test_sparsity_exact(grade, learner):
    rng = random.SystemRandom()
    seed, amount = rng.randrange(2**31), round(rng.uniform(0.3, 0.8), 3)
    original = _model(seed)
    before = state_snapshot(original)
    problems, details = [], {"amount": amount}
    for scope in SCOPES:
        pruned = learner.call("magnitude_prune", original, amount, scope=scope)
        expect(isinstance(pruned, nn.Module), f"magnitude_prune(scope={scope!r}) should return an nn.Module")
        expect(unchanged(original, before), f"magnitude_prune(scope={scope!r}) changed the model it was given: "
                                            f"prune a deep copy")
        found, counted = _check_scope(original, pruned, amount, scope)
        problems += found
        if counted:
            problems += _check_report(learner, pruned, counted, scope)
            details[f"{scope}_layer_sparsity"] = {n: round(z / t, 4) for n, (z, t) in counted.items()}
    # The curve: the grader's evaluate returns its own zero count, so each point can be checked exactly.
    amounts = [0.0, 0.5, 0.9]
    seen: list[float] = []

    def evaluate(model):
        seen.append(sum(int((m.weight == 0).sum()) for m in _layers(model).values()) /
                    sum(m.weight.numel() for m in _layers(model).values()))
        return seen[-1]

    curve = learner.call("sparsity_curve", copy.deepcopy(original), amounts, evaluate, scope="global")
    try:
        points = [(float(p.amount), float(p.sparsity), float(p.accuracy)) for p in curve]
    except Exception as e:
        points = []
        problems.append(f"sparsity_curve should return CurvePoints ({type(e).__name__}: {e})")
    if points:
        if len(points) != len(amounts) or len(seen) != len(amounts):
            problems.append(f"sparsity_curve: {len(points)} points and {len(seen)} evaluate calls for "
                            f"{len(amounts)} amounts (one of each per amount)")
        else:
            for a, (pa, ps, pacc), s in zip(amounts, points, seen):
                if pa != a or abs(ps - s) > 1e-12 or pacc != s:
                    problems.append(f"sparsity_curve at amount {a}: point ({pa}, {ps:.6f}, {pacc:.6f}), but the model "
                                    f"evaluate received has sparsity {s:.6f} (the point must report it and what "
                                    f"evaluate returned)")
    details["problems"] = problems[:10]
    grade.record(len(problems), details=details,
                 message=(f"amount {amount}: global and per-layer pruning exact, reports and curve match the grader's "
                          f"count" if not problems else f"{len(problems)} problem(s): " + "; ".join(problems[:3])))
