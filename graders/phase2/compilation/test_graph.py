"""Task 2.8: batch-norm folding, constant folding and no-op removal, checked on graphs the grader built."""
from __future__ import annotations

import copy
from collections import Counter

import torch
from torch import nn

from ...checks import as_int, as_tensor, expect, get_field
from ...plugin import criterion
from .workloads import (CLEANUP_MINIMUM, CLEANUP_NODES, bn_graph, cleanup_graph, conv_bn_model, fresh_seed,
                                rel_diff, run_graph)

#: Outputs of a rewritten graph must match the original's within this (relative to the output's scale).
GATE_REL = 1e-5


def _check_proto(obj, what: str):
    import onnx

    expect(isinstance(obj, onnx.ModelProto), f"{what} should return an onnx.ModelProto, got {type(obj).__name__}")
    try:
        onnx.checker.check_model(obj, full_check=True)
    except Exception as e:  # noqa: BLE001
        expect(False, f"the graph {what} returned fails onnx.checker: {type(e).__name__}: {str(e)[:300]}")
    return obj


def _same_interface(got, want, what: str) -> None:
    names = lambda m: ([i.name for i in m.graph.input if i.name not in {t.name for t in m.graph.initializer}],  # noqa: E731
                       [o.name for o in m.graph.output])
    expect(names(got) == names(want), f"{what} changed the graph's inputs/outputs: {names(got)} instead of {names(want)}")


def _run(model, x, what: str) -> torch.Tensor:
    try:
        return run_graph(model, x)
    except Exception as e:  # noqa: BLE001
        expect(False, f"ONNX Runtime cannot run the graph {what} returned: {type(e).__name__}: {str(e)[:300]}")


@criterion("p2.compilation.bn_fold_torch")
def test_bn_fold_torch(grade, learner):
    seed = fresh_seed()
    model = conv_bn_model(seed)
    original = copy.deepcopy(model)
    folded = learner.call("fold_batchnorm", model)
    expect(isinstance(folded, nn.Module), f"fold_batchnorm should return an nn.Module, got {type(folded).__name__}")
    left = [type(m).__name__ for m in folded.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    expect(not left, f"{len(left)} batch-norm module(s) are still in the folded model")
    # A folded model holds conv weights + one bias per conv output channel + the classifier, nothing more.
    budget = sum(m.weight.numel() + m.out_channels for m in original.modules() if isinstance(m, nn.Conv2d))
    budget += sum(p.numel() for m in original.modules() if isinstance(m, nn.Linear) for p in m.parameters())
    held = sum(t.numel() for t in (*folded.parameters(), *folded.buffers()) if t.is_floating_point())
    expect(held <= budget, f"the folded model holds {held} numbers, more than the {budget} of folded convs and "
                           f"the classifier: are the batch-norm statistics still applied separately?")
    x = torch.randn(8, 3, 16, 16, generator=torch.Generator().manual_seed(seed + 1))
    with torch.inference_mode():
        want = original(x)
        again = model(x)
    got = as_tensor(learner.call_obj(folded, x.clone(), what="your folded model"), "folded model output",
                    shape=want.shape)
    expect(torch.equal(again, want), "fold_batchnorm changed the model it was given; return a new module")
    err = rel_diff(got, want)
    grade.record(err, message=f"max |folded - original| / max |original| = {err:.2e} (batch-norm eps and "
                              f"statistics drawn at random for this grade)", details={"seed": seed, "numbers_held": held})


@criterion("p2.compilation.bn_fold_onnx")
def test_bn_fold_onnx(grade, learner):
    seed = fresh_seed()
    graph = bn_graph(seed)
    out = _check_proto(learner.call("fold_batchnorm_onnx", copy.deepcopy(graph)), "fold_batchnorm_onnx")
    _same_interface(out, graph, "fold_batchnorm_onnx")
    before, after = Counter(n.op_type for n in graph.graph.node), Counter(n.op_type for n in out.graph.node)
    expect(after["BatchNormalization"] == 0, f"{after['BatchNormalization']} BatchNormalization node(s) left")
    expect(sum(after.values()) < sum(before.values()),
           f"{sum(after.values())} nodes after folding, not fewer than the {sum(before.values())} before")
    x = torch.randn(8, 3, 16, 16, generator=torch.Generator().manual_seed(seed + 1))
    err = rel_diff(_run(out, x, "fold_batchnorm_onnx"), run_graph(graph, x))
    grade.record(err, message=f"nodes {sum(before.values())} -> {sum(after.values())}, no BatchNormalization left; "
                              f"max relative difference {err:.2e}",
                 details={"ops_before": dict(before), "ops_after": dict(after), "seed": seed})


@criterion("p2.compilation.graph_cleanup")
def test_graph_cleanup(grade, learner):
    seed = fresh_seed()
    graph = cleanup_graph(seed)
    got = learner.call("optimize_graph", copy.deepcopy(graph))
    expect(isinstance(got, tuple) and len(got) == 2, "optimize_graph should return (optimized model, GraphReport)")
    out, report = got
    _check_proto(out, "optimize_graph")
    _same_interface(out, graph, "optimize_graph")
    after = len(out.graph.node)
    reported = (as_int(get_field(report, "nodes_before", "GraphReport"), "nodes_before"),
                as_int(get_field(report, "nodes_after", "GraphReport"), "nodes_after"))
    expect(reported == (CLEANUP_NODES, after), f"your report says {reported[0]} -> {reported[1]} nodes; the graphs "
                                               f"have {CLEANUP_NODES} -> {after}")
    x = torch.randn(8, 3, 16, 16, generator=torch.Generator().manual_seed(seed + 1))
    err = rel_diff(_run(out, x, "optimize_graph"), run_graph(graph, x))
    ops = dict(Counter(n.op_type for n in out.graph.node))
    if err > GATE_REL:
        grade.fail(f"the optimized graph's outputs differ from the original's by {err:.2e} relative "
                   f"(more than {GATE_REL:g}): a pass changed what the graph computes", value=0.0,
                   details={"ops_after": ops})
        return
    share = 100.0 * (CLEANUP_NODES - after) / (CLEANUP_NODES - CLEANUP_MINIMUM)
    grade.record(share, message=f"{CLEANUP_NODES} -> {after} nodes ({ops}); a complete cleanup leaves "
                                f"{CLEANUP_MINIMUM}; outputs within {err:.1e} relative",
                 details={"ops_after": ops, "max_rel_diff": err, "seed": seed})
