"""Task 2.13: structured channel pruning: a genuinely smaller network that is the original minus some channels,
counted right, recovered by fine-tuning, and faster in the same run (unlike unstructured zeros)."""
from __future__ import annotations

import copy
import random

import torch
from torch import nn
from torch.nn.utils import prune

from ...checks import as_tensor, expect
from ...harness import paired_ratio, threads
from ...plugin import criterion
from .workloads import (KEEP_RATIO, cost, digits, eager, learner_fine_tuned, learner_pruned, learner_timing,
                        resnet_blocks)

#: Before fine-tuning, the pruned network must compute the silenced original to this (max |difference|,
#: relative to the largest logit).
EQUIVALENCE_TOL = 1e-4
#: During timing each batch of 8 test images must get at least this many of the original's top-1 answers.
MIN_AGREEMENT = 6
TIMING_BATCH = 8


def _kept_channels(orig_conv: nn.Conv2d, new_conv: nn.Conv2d) -> torch.Tensor | None:
    """Which of the original conv's output filters the pruned conv kept (exact copies), or None."""
    w0 = orig_conv.weight.detach().flatten(1)
    w1 = new_conv.weight.detach().flatten(1)
    if w1.shape[1] != w0.shape[1] or len(w1) > len(w0):
        return None
    d = torch.cdist(w1.double(), w0.double())
    idx = d.argmin(1)
    if not bool((d.gather(1, idx[:, None]) <= 1e-6 * w0.abs().max()).all()) or len(set(idx.tolist())) != len(idx):
        return None
    return idx


def _silenced(original: nn.Module, kept: dict[str, torch.Tensor]) -> nn.Module:
    """The original with every dropped inner channel silenced: bn1's scale and shift at 0 there."""
    model = copy.deepcopy(original).eval()
    blocks = resnet_blocks(model)
    with torch.no_grad():
        for name, idx in kept.items():
            bn = blocks[name].bn1
            drop = torch.ones(bn.num_features, dtype=torch.bool)
            drop[idx] = False
            bn.weight[drop] = 0.0
            bn.bias[drop] = 0.0
    return model


@criterion("p2.compression.structured_exact")
def test_structured_exact(grade, learner):
    d = digits()
    built = learner_pruned(learner)
    original, pruned = built["original"], built["pruned"]
    example = d["test_x"][:1]
    (p0, f0), (p1, f1) = cost(original, example), cost(pruned, example)
    details = {"params": [p0, p1], "flops": [f0, f1], "keep_ratio": KEEP_RATIO}
    # What the learner claims must be what is there.
    for what, model, want in (("the original", original, (p0, f0)), ("the pruned model", pruned, (p1, f1))):
        c = learner.call("count_cost", model, example)
        try:
            claim = (int(c.params), int(c.flops))
        except Exception as e:
            grade.fail(f"count_cost should return a ModelCost ({type(e).__name__}: {e})", details=details)
            return
        expect(claim == want, f"count_cost({what}) says {claim[0]:,} parameters and {claim[1]:,} FLOPs; the grader "
                              f"counts {want[0]:,} and {want[1]:,} (FlopCounterMode on one sample): a zeroed weight "
                              f"still costs its multiply-add")
    # The pruned network must be the original minus channels: same blocks, kept filters copied, BN and the
    # next conv cut to match (checked by computing the silenced original).
    before, after = resnet_blocks(original), resnet_blocks(pruned)
    expect(before.keys() == after.keys(), f"the pruned model's residual blocks {sorted(after)} are not the original's "
                                          f"{sorted(before)}")
    kept = {}
    for name, block in before.items():
        idx = _kept_channels(block.conv1, after[name].conv1)
        expect(idx is not None, f"{name}.conv1: its filters are not copies of the original's (prune by selecting "
                                f"whole output channels, weight[keep])")
        want_k = max(1, round(KEEP_RATIO * block.conv1.out_channels))
        expect(len(idx) == want_k, f"{name}.conv1 keeps {len(idx)} of {block.conv1.out_channels} channels, expected "
                                   f"round({KEEP_RATIO} * {block.conv1.out_channels}) = {want_k}")
        kept[name] = idx
    with torch.inference_mode():
        want = _silenced(original, kept)(d["test_x"][:32])
    got = as_tensor(learner.call_obj(pruned, d["test_x"][:32].clone(), what="your pruned model"), "output",
                    shape=want.shape)
    err = float((got - want).abs().max() / want.abs().max())
    details["equivalence_error"] = err
    expect(err <= EQUIVALENCE_TOL,
           f"before fine-tuning, your pruned model should compute the original with the dropped channels silenced; "
           f"it is off by {err:.2e} (relative) > {EQUIVALENCE_TOL:g}: BatchNorm's weight, bias, running_mean and "
           f"running_var and the next conv's input columns must be cut at the same indices as conv1's filters")
    cut = 100.0 * (1 - f1 / f0)
    details["param_cut_pct"] = 100.0 * (1 - p1 / p0)
    grade.record(cut, details=details,
                 message=f"keep_ratio {KEEP_RATIO}: {f0 / 1e6:.1f} -> {f1 / 1e6:.1f} MFLOPs ({cut:.1f} % fewer), "
                         f"{p0 / 1e6:.2f} M -> {p1 / 1e6:.2f} M parameters; the original minus those channels, "
                         f"to {err:.1e}")


@criterion("p2.compression.structured_accuracy")
def test_structured_accuracy(grade, learner):
    d = digits()
    tuned = learner_fine_tuned(learner)
    drop = d["fp32_acc"] - tuned["accuracy"]
    grade.record(drop, details={"unpruned_top1_pct": d["fp32_acc"], "pruned_top1_pct": tuned["accuracy"],
                                "recalibrated_top1_pct": tuned["recalibrated_accuracy"], "seed": tuned["seed"],
                                "epochs": tuned["epochs"]},
                 message=f"top-1 on the test split: unpruned {d['fp32_acc']:.2f} %, pruned with BatchNorm recalibrated "
                         f"{tuned['recalibrated_accuracy']:.2f} %, then fine-tuned {tuned['accuracy']:.2f} % "
                         f"({tuned['epochs']} epochs, seed {tuned['seed']})")


@criterion("p2.compression.structured_speedup")
def test_structured_speedup(grade, learner, benchmark):
    """Batch 8 of test images, one thread; the unstructured 50 % model is timed too and reported, not rewarded."""
    d = digits()
    original = copy.deepcopy(d["model"]).eval()
    tuned = learner_fine_tuned(learner)["model"]
    test_x = d["test_x"]
    gen = random.Random(random.SystemRandom().randrange(2**31))

    def inputs():
        return (test_x[torch.tensor(gen.sample(range(len(test_x)), TIMING_BATCH))].clone(),)

    def dense(x):
        return eager(original, x)

    def pruned(x):
        with torch.inference_mode():
            return tuned(x)

    def agrees(want_out, got_out, inp) -> str | None:
        got_t = as_tensor(got_out, "your pruned model's output", shape=want_out.shape)
        same = int((got_t.argmax(1) == want_out.argmax(1)).sum())
        return None if same >= MIN_AGREEMENT else \
            f"your pruned model agrees with the original's top-1 on only {same} of {TIMING_BATCH} test images"

    # Unstructured zeros at the same 50 %: the same dense kernels, so no faster (reported only).
    sparse = copy.deepcopy(original)
    targets = [(m, "weight") for m in sparse.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=0.5)
    for m, n in targets:
        prune.remove(m, n)
    pairs = 12 if grade.quick else 25
    with threads(1):
        r = learner_timing(lambda: paired_ratio(dense, pruned, threshold=grade.thresholds.pass_, make_inputs=inputs,
                                                pairs=pairs, warmup=3, benchmark=benchmark, check=agrees))
        u = paired_ratio(dense, lambda x: eager(sparse, x), make_inputs=inputs, pairs=pairs, warmup=2, max_attempts=1)
    details = {**r.details("dense", "pruned"), "unstructured_50pct_ratio": u.median,
               "unstructured_50pct_ms": u.b_ms.median}
    grade.record(r.median, interval=r.interval, noise=r.noise, details=details,
                 message=f"one thread, batch {TIMING_BATCH}: unpruned {r.a_ms.median:.1f} ms, channel-pruned "
                         f"{r.b_ms.median:.1f} ms ({r.median:.2f}x); 50 % unstructured zeros: {u.b_ms.median:.1f} ms "
                         f"({u.median:.2f}x, reported, not rewarded: dense kernels multiply the zeros too)")
