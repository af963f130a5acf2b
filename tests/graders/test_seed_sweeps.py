"""Criteria that draw a random seed, swept over many seeds in process with planted mistakes: a wrong
implementation must fail on every seed (never pass by the luck of the draw), a right one pass on every seed.

Each sweep found a mistake that passed on some seeds before the criterion's inputs were changed:

* p2.compilation.bn_fold_torch / bn_fold_onnx / graph_cleanup: a fold that forgets eps passed ~1 seed in 100
  (a hard-coded eps = 1e-5: 1 in 30); now a quarter of each batch norm's channels have a variance near eps.
* p2.quantization.math_exact: per-channel parameters always applied on axis 0 passed ~1 grade in 100, a
  quantize without its clamp 1 in 40, a range not widened to contain 0 1 in 300; now both axes, values past
  the range and ranges that exclude 0 are in every grade.
* p2.quantization.tradeoff (the front of random rows): a front that drops duplicate rows passed 44 % of
  grades, one sorted the wrong way 5 %; now every set of random rows carries a twin, a tie and a second
  front row.
"""
from __future__ import annotations

import copy
import dataclasses
import random
import warnings
from types import SimpleNamespace as NS

import numpy as np
import pytest
import torch
from torch import nn

from gradelib import ROOT
from graders.harness import threads
from graders.phase2.compilation import test_graph
from graders.phase2.compilation.workloads import ConvBNNet
from graders.phase2.quantization import test_math, test_tradeoff

needs_reference = pytest.mark.skipif(not (ROOT / "phase2_optimization/quantization/reference").is_dir(),
                                     reason="no reference solution in this copy (learner release)")


class _Grade:
    """What a criterion records: the value, or that it failed (and why)."""

    quick, cuda = True, False

    def __init__(self):
        self.value, self.failed, self.message = None, False, ""

    def record(self, value, **kw):
        self.value, self.message = value, kw.get("message", "")

    def fail(self, message, **kw):
        self.failed, self.message = True, message


class _Learner:
    """``call(name)`` dispatches to ``impl[name]``; ``call_obj`` calls what the learner's code returned."""

    def __init__(self, **impl):
        self.impl = impl

    def call(self, name, *args, **kwargs):
        return self.impl[name](*args, **kwargs)

    def call_obj(self, obj, *args, what="", **kwargs):
        return obj(*args, **kwargs)


def _sweep(monkeypatch, module, name: str, seeds, run) -> list:
    """``run()`` once per seed, with ``module.name`` (the criterion's seed source) returning that seed."""
    out = []
    for seed in seeds:
        monkeypatch.setattr(module, name, lambda s=seed: s)
        out.append(run())
    return out


# ## Batch-norm folding: eps must matter on every seed ------------------------------------------------
def _denominator(var, eps, mistake):
    if mistake == "forgets eps":
        return var.sqrt() if isinstance(var, torch.Tensor) else np.sqrt(var)
    if mistake == "eps outside the root":
        return (var.sqrt() if isinstance(var, torch.Tensor) else np.sqrt(var)) + eps
    if mistake == "eps hard-coded 1e-5":
        eps = 1e-5
    return (var + eps).sqrt() if isinstance(var, torch.Tensor) else np.sqrt(var + eps)


MISTAKES = ("forgets eps", "eps outside the root", "eps hard-coded 1e-5")


def _fold_torch(mistake=None):
    def fold_batchnorm(model: ConvBNNet) -> nn.Module:
        m = copy.deepcopy(model)

        def fold(conv, bn):
            s = bn.weight / _denominator(bn.running_var, bn.eps, mistake)
            new = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                            groups=conv.groups, bias=True)
            bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
            with torch.no_grad():
                new.weight.copy_(conv.weight * s.reshape(-1, 1, 1, 1))
                new.bias.copy_((bias - bn.running_mean) * s + bn.bias)
            return new.eval()

        with torch.no_grad():
            m.stem[0], m.stem[1] = fold(m.stem[0], m.stem[1]), nn.Identity()
            m.conv1, m.bn1 = fold(m.conv1, m.bn1), nn.Identity()
            m.conv2, m.bn2 = fold(m.conv2, m.bn2), nn.Identity()
            m.down[0], m.down[1] = fold(m.down[0], m.down[1]), nn.Identity()
        return m

    return fold_batchnorm


def _fold_onnx(mistake=None):
    from onnx import numpy_helper

    def fold_batchnorm_onnx(model):
        m = copy.deepcopy(model)
        g = m.graph
        inits = {t.name: t for t in g.initializer}
        arr = lambda n: numpy_helper.to_array(inits[n]).astype(np.float64)  # noqa: E731
        producer = {o: n for n in g.node for o in n.output}
        for bn in [n for n in g.node if n.op_type == "BatchNormalization"]:
            conv = producer[bn.input[0]]
            eps = next(a.f for a in bn.attribute if a.name == "epsilon")
            scale, beta, mean, var = (arr(n) for n in bn.input[1:5])
            s = scale / _denominator(var, eps, mistake)
            w = arr(conv.input[1]) * s[:, None, None, None]
            b = ((arr(conv.input[2]) if len(conv.input) > 2 else 0.0) - mean) * s + beta
            names = (conv.input[1] + "_folded", conv.name + "_bias_folded")
            g.initializer.extend([numpy_helper.from_array(w.astype(np.float32), names[0]),
                                  numpy_helper.from_array(b.astype(np.float32), names[1])])
            del conv.input[1:]
            conv.input.extend(names)
            conv.output[0] = bn.output[0]
            g.node.remove(bn)
        used = {i for n in g.node for i in n.input}
        keep = [t for t in g.initializer if t.name in used]
        del g.initializer[:]
        g.initializer.extend(keep)
        return m

    return fold_batchnorm_onnx


def _bn_torch_errors(monkeypatch, mistake, seeds) -> list[float]:
    learner = _Learner(fold_batchnorm=_fold_torch(mistake))

    def run():
        g = _Grade()
        test_graph.test_bn_fold_torch(g, learner)
        return g.value

    with threads(1):
        return _sweep(monkeypatch, test_graph, "fresh_seed", seeds, run)


def test_a_torch_fold_that_mishandles_eps_fails_on_every_seed(monkeypatch):
    mark = 1e-5   # the pass mark of p2.compilation.bn_fold_torch (max relative difference)
    right = _bn_torch_errors(monkeypatch, None, range(200))
    assert max(right) <= 1e-6, max(right)                      # full marks on every seed
    wrong = _bn_torch_errors(monkeypatch, "forgets eps", range(200))
    assert min(wrong) > 100 * mark, min(wrong)                  # fails on every seed, by far
    for mistake in MISTAKES[1:]:
        errs = _bn_torch_errors(monkeypatch, mistake, range(50))
        assert min(errs) > 100 * mark, (mistake, min(errs))


def test_an_onnx_fold_that_mishandles_eps_fails_on_every_seed(monkeypatch):
    def errors(mistake, criterion, seeds):
        learner = _Learner(fold_batchnorm_onnx=_fold_onnx(mistake),
                           optimize_graph=lambda m: (_fold_onnx(mistake)(m), NS(nodes_before=21, nodes_after=19)))

        def run():
            g = _Grade()
            criterion(g, learner)
            return g
        return _sweep(monkeypatch, test_graph, "fresh_seed", seeds, run)

    for g in errors(None, test_graph.test_bn_fold_onnx, range(200)):
        assert g.value <= 1e-6, g.message
    for mistake in MISTAKES:
        for g in errors(mistake, test_graph.test_bn_fold_onnx, range(200 if mistake == MISTAKES[0] else 50)):
            assert g.value > 1e-3, (mistake, g.message)
    # graph_cleanup's own gate (outputs within 1e-5) sees the same folds: its graph has the same batch norms
    for g in errors(None, test_graph.test_graph_cleanup, range(50)):
        assert not g.failed, g.message
    for g in errors(MISTAKES[0], test_graph.test_graph_cleanup, range(50)):
        assert g.failed and "changed what the graph computes" in g.message, g.message


# ## p2.quantization.math_exact: axis, clamp and zero in every grade -------------------------------
def _affine():
    from phase2_optimization.quantization.reference import affine
    from phase2_optimization.quantization.types import QuantSpec

    def on_axis0(fn):
        return lambda x, s, z, spec: fn(x, s, z, dataclasses.replace(spec, axis=0) if spec.per_channel else spec)

    def quantize_no_clamp(x, s, z, spec):
        x = x.float()
        q = torch.round(x * (1.0 / affine.along_axis(s, x, spec).float())) + affine.along_axis(z, x, spec)
        return q.to(torch.int64).to(spec.storage_dtype)

    def qparams_without_zero(lo, hi, spec):   # the range is not widened to contain 0
        if spec.symmetric:
            return affine.compute_qparams(lo, hi, spec)
        lo, hi = torch.as_tensor(lo, dtype=torch.float32), torch.as_tensor(hi, dtype=torch.float32)
        scale = torch.clamp((hi - lo) / float(spec.quant_max - spec.quant_min), min=torch.finfo(torch.float32).eps)
        zp = spec.quant_min - torch.round(lo / scale).to(torch.int64)
        return scale, torch.clamp(zp, spec.quant_min, spec.quant_max)

    right = dict(QuantSpec=QuantSpec, compute_qparams=affine.compute_qparams, quantize=affine.quantize,
                 dequantize=affine.dequantize, fake_quantize=affine.fake_quantize)
    return right, {
        "per-channel parameters on axis 0 always": {**right, "quantize": on_axis0(affine.quantize),
                                                    "dequantize": on_axis0(affine.dequantize),
                                                    "fake_quantize": on_axis0(affine.fake_quantize)},
        "quantize without its clamp": {**right, "quantize": quantize_no_clamp},
        "a range not widened to contain 0": {**right, "compute_qparams": qparams_without_zero},
    }


def _math_wrong_values(learner, seed: int) -> int:
    """Values that disagree with PyTorch over the 16 schemes of one grade (math_exact's own steps)."""
    rng = random.Random(seed)
    wrong = 0
    for combo in test_math.COMBOS:
        try:
            case = test_math._new_case(learner, rng, *combo, flip=seed % 2 == 1)
            wrong += sum(bad for _, bad, _ in test_math._check_scheme(learner, case))
        except Exception:  # noqa: BLE001 - shapes that do not broadcast: the criterion fails too
            return 1
        if wrong:
            return wrong
    return wrong


@needs_reference
def test_math_mistakes_fail_on_every_seed():
    right, wrong = _affine()
    with warnings.catch_warnings(), threads(1):
        warnings.simplefilter("ignore")
        assert all(_math_wrong_values(_Learner(**right), s) == 0 for s in range(40))
        for mistake, impl in wrong.items():
            passed = [s for s in range(60) if _math_wrong_values(_Learner(**impl), s) == 0]
            assert not passed, f"{mistake}: passed with seeds {passed}"


# ## p2.quantization.tradeoff: the front of random rows ----------------------------------------------
def _front_impl(kind: str):
    def pareto_front(rows):
        pts = {r.variant: (r.accuracy_pct, r.latency_ms) for r in rows if r.supported}

        def beaten(n):
            a, lat = pts[n]
            others = [(b, m) for o, (b, m) in pts.items() if o != n]
            if kind == "drops ties on both axes":
                return any(b >= a and m <= lat for b, m in others)
            if kind == "beaten only when worse on both axes":
                return any(b > a and m < lat for b, m in others)
            return any(b >= a and m <= lat and (b > a or m < lat) for b, m in others)

        front = sorted((n for n in pts if not beaten(n)), key=lambda n: (pts[n][1], -pts[n][0]))
        if kind == "sorted by accuracy, best first":
            front.sort(key=lambda n: -pts[n][0])
        if kind == "drops duplicate rows":
            seen, kept = set(), []
            for n in front:
                if pts[n] not in seen:
                    seen.add(pts[n])
                    kept.append(n)
            front = kept
        return [NS(variant=n) for n in front]
    return pareto_front


def test_front_mistakes_fail_on_every_seed(monkeypatch):
    def passes(kind: str, seeds) -> list[int]:
        learner = _Learner(pareto_front=_front_impl(kind),
                           TradeoffRow=lambda **kw: NS(**{"supported": True, **kw}))
        ok = []
        for seed in seeds:
            monkeypatch.setattr(test_tradeoff.random, "SystemRandom", lambda s=seed: random.Random(s))
            if test_tradeoff._random_front_failure(learner) == "":
                ok.append(seed)
        return ok

    assert len(passes("right", range(300))) == 300
    for kind in ("drops duplicate rows", "drops ties on both axes", "beaten only when worse on both axes",
                 "sorted by accuracy, best first"):
        assert passes(kind, range(300)) == [], kind


# ## p2.compilation.export_compare: the last, partial batch must count ----------------------------------
def test_the_largest_difference_is_always_in_a_partial_last_batch():
    from graders.phase2.compilation.test_export import TAIL_GAP, _known_answer_images

    for seed in range(1000):
        g = torch.Generator().manual_seed(seed)
        per_image = torch.rand(359, generator=g) * 3 + 0.5 + (torch.rand(1, generator=g) > 0.5) * 2
        n = int(torch.randint(48, 240, (1,), generator=g))
        idx, bs = _known_answer_images(per_image, n, g)
        d = per_image[idx]
        assert len(idx) <= n and len(set(idx.tolist())) == len(idx) and int(idx[-1]) == int(per_image.argmax())
        assert 8 <= bs < min(48, len(idx)) and len(idx) % bs, (len(idx), bs)   # a partial last batch
        assert float(d[:-1].max()) * TAIL_GAP <= float(d[-1])      # skipping it is off by 5 % or more


def _compare(mode: str):
    import onnxruntime as ort
    from phase2_optimization.compilation.types import ExportComparison

    def compare_with_pytorch(model, onnx_path, images, labels=None, *, batch_size=32):
        session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        name, n = session.get_inputs()[0].name, int(images.shape[0])
        stop = {"right": n, "skips the partial last batch": n - n % batch_size, "first batch only": batch_size}[mode]
        worst, agree, right_e, right_o, seen = 0.0, 0, 0, 0, 0
        for i in range(0, stop, batch_size):
            xb, yb = images[i:i + batch_size], labels[i:i + batch_size].numpy()
            with torch.inference_mode():
                want = model(xb).numpy()
            got = session.run(None, {name: xb.numpy()})[0]
            worst = max(worst, float(np.abs(got - want).max()))
            agree += int((got.argmax(1) == want.argmax(1)).sum())
            right_e, right_o, seen = right_e + int((want.argmax(1) == yb).sum()), right_o + int((got.argmax(1) == yb).sum()), \
                seen + len(xb)
        return ExportComparison(max_abs_diff=worst, top1_agreement=agree / seen, num_samples=n,
                                accuracy_eager=right_e / seen, accuracy_onnx=right_o / seen)
    return compare_with_pytorch


def test_a_comparison_that_skips_images_fails_export_compare(monkeypatch, tmp_path):
    """In process, one grade each (the sweep of the image choice is above; the right comparison is the
    reference's, graded end to end): before the largest difference was put in the partial last batch,
    skipping that batch passed 76 seeds in 100, comparing the first batch only 39."""
    from graders.phase2.compilation import test_export
    from graders.submission import SubmissionError

    with threads(1):
        for seed, mode in enumerate(("skips the partial last batch", "first batch only")):
            monkeypatch.setattr(test_export, "fresh_seed", lambda s=seed: s)
            g = _Grade()
            try:
                test_export.test_export_compare(g, _Learner(compare_with_pytorch=_compare(mode)), tmp_path)
            except SubmissionError as e:      # a figure the criterion checks exactly (agreement, accuracy)
                g.failed, g.message = True, str(e)
            assert g.failed or g.value > 1.0, (mode, g.value, g.message)
