"""Task 2.8: batch-norm folding (PyTorch and ONNX), constant folding, no-op removal, fixed point."""
from __future__ import annotations

import copy

import numpy as np
import onnx
import pytest
import torch
from onnx import helper, numpy_helper
from torch import nn

from .conftest import IMAGE, make_graph, make_tiny, run_onnx
from .impl import p2c

pytestmark = pytest.mark.phase2_task8
RNG = np.random.default_rng(0)


def _bn(channels: int, seed: int = 0) -> nn.BatchNorm2d:
    g = torch.Generator().manual_seed(seed)
    bn = nn.BatchNorm2d(channels, eps=1e-3)
    with torch.no_grad():
        bn.running_mean.copy_(torch.randn(channels, generator=g))
        bn.running_var.copy_(torch.rand(channels, generator=g) + 0.5)
        bn.weight.copy_(torch.rand(channels, generator=g) + 0.5)
        bn.bias.copy_(torch.randn(channels, generator=g))
    return bn.eval()


@pytest.mark.parametrize("bias, groups, stride", [(False, 1, 1), (True, 1, 2), (False, 4, 1)])
def test_fold_conv_bn_matches_the_formula(bias, groups, stride):
    conv = nn.Conv2d(8, 12, 3, padding=1, bias=bias, groups=groups, stride=stride).eval()
    bn = _bn(12)
    before = copy.deepcopy((conv.state_dict(), bn.state_dict()))
    folded = p2c.fold_conv_bn(conv, bn)
    s = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    b = conv.bias if bias else torch.zeros(12)
    assert torch.allclose(folded.weight, conv.weight * s[:, None, None, None], atol=1e-6)
    assert torch.allclose(folded.bias, (b - bn.running_mean) * s + bn.bias, atol=1e-6)
    x = torch.randn(2, 8, 9, 9)
    with torch.no_grad():
        assert torch.allclose(folded(x), bn(conv(x)), atol=1e-5)
    assert all(torch.equal(a, b) for a, b in zip(before[0].values(), conv.state_dict().values()))


def test_fold_conv_bn_refuses_a_mismatch():
    with pytest.raises(ValueError):
        p2c.fold_conv_bn(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(9))
    with pytest.raises(ValueError):
        p2c.fold_conv_bn(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8, track_running_stats=False))


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 6, 3, padding=1, bias=False), _bn(6, 1)
        self.conv2, self.bn2 = nn.Conv2d(6, 6, 3, padding=1), _bn(6, 2)
        self.shared = nn.Conv2d(6, 6, 1)
        self.bn3 = _bn(6, 3)

    def forward(self, x):
        h = torch.relu(self.bn1(self.conv1(x)))
        h = h + self.bn2(self.conv2(h))
        y = self.shared(h)
        return self.bn3(y) + y                     # conv output used twice: must NOT be folded


def test_fold_batchnorm_in_a_model():
    for model in (make_tiny(), Residual().eval()):
        original = copy.deepcopy(model)
        folded = p2c.fold_batchnorm(model)
        x = torch.randn(4, *IMAGE)
        with torch.no_grad():
            want, got = original(x), folded(x)
            assert torch.equal(model(x), want)                 # the input model is left unchanged
        assert (got - want).abs().max() / want.abs().max() < 1e-5
        left = [m for m in folded.modules() if isinstance(m, nn.BatchNorm2d)]
        assert len(left) == (1 if isinstance(model, Residual) else 0)


def _conv_bn_graph(eps: float = 1e-4, bias: bool = True):
    inits = {"W": RNG.standard_normal((4, 3, 3, 3)).astype(np.float32),
             "s": RNG.uniform(0.5, 1.5, 4).astype(np.float32), "B": RNG.standard_normal(4).astype(np.float32),
             "m": RNG.standard_normal(4).astype(np.float32), "v": RNG.uniform(0.5, 2, 4).astype(np.float32)}
    conv_in = ["x", "W"]
    if bias:
        inits["b"] = RNG.standard_normal(4).astype(np.float32)
        conv_in.append("b")
    nodes = [helper.make_node("Conv", conv_in, ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c", "s", "B", "m", "v"], ["y"], epsilon=eps)]
    return make_graph(nodes, inits, outputs=(("y", [None, 4, 16, 16]),))


@pytest.mark.parametrize("bias", [True, False])
def test_fold_batchnorm_onnx(bias):
    g = _conv_bn_graph(eps=3e-3, bias=bias)
    before = g.SerializeToString()
    out = p2c.fold_batchnorm_onnx(g)
    assert g.SerializeToString() == before                    # the input is left unchanged
    onnx.checker.check_model(out, full_check=True)
    assert [n.op_type for n in out.graph.node] == ["Conv"] and out.graph.node[0].output[0] == "y"
    assert len(out.graph.initializer) == 2                    # W' and b'; the old ones pruned
    x = RNG.standard_normal((2, 3, 16, 16)).astype(np.float32)
    np.testing.assert_allclose(run_onnx(out, x=x), run_onnx(g, x=x), rtol=1e-5, atol=1e-5)


def test_fold_batchnorm_onnx_leaves_a_shared_conv_alone():
    g = _conv_bn_graph()
    g.graph.node.append(helper.make_node("Add", ["y", "c"], ["z"]))
    g.graph.output[0].name = "z"
    out = p2c.fold_batchnorm_onnx(g)
    assert [n.op_type for n in out.graph.node] == ["Conv", "BatchNormalization", "Add"]


def test_fold_constants():
    nodes = [helper.make_node("Constant", [], ["two"], value_float=2.0),
             helper.make_node("Mul", ["two", "w"], ["w2"]),
             helper.make_node("Transpose", ["w2"], ["w2t"], perm=[1, 0]),
             helper.make_node("MatMul", ["x", "w2t"], ["y"])]
    w = RNG.standard_normal((5, 4)).astype(np.float32)
    g = make_graph(nodes, {"w": w}, inputs=(("x", [None, 4]),), outputs=(("y", [None, 5]),))
    out = p2c.fold_constants(g)
    assert [n.op_type for n in out.graph.node] == ["MatMul"]
    inits = {i.name: numpy_helper.to_array(i) for i in out.graph.initializer}
    assert set(inits) == {"w2t"}
    np.testing.assert_allclose(inits["w2t"], (2 * w).T, rtol=1e-6)
    x = RNG.standard_normal((3, 4)).astype(np.float32)
    np.testing.assert_allclose(run_onnx(out, x=x), run_onnx(g, x=x), rtol=1e-5)


def test_fold_constants_never_folds_an_overridable_initializer():
    nodes = [helper.make_node("Mul", ["k", "k"], ["k2"]), helper.make_node("Add", ["x", "k2"], ["y"])]
    g = make_graph(nodes, {"k": np.float32(3.0)}, inputs=(("x", [None, 4]), ("k", [])), outputs=(("y", [None, 4]),))
    assert len(p2c.fold_constants(g).graph.node) == 2


def test_remove_noops():
    nodes = [helper.make_node("Identity", ["x"], ["a"]),
             helper.make_node("Dropout", ["a"], ["b"]),
             helper.make_node("Mul", ["b", "one"], ["c"]),
             helper.make_node("Add", ["zero", "c"], ["d"]),
             helper.make_node("Transpose", ["d"], ["e"], perm=[0, 1, 2, 3]),
             helper.make_node("Relu", ["e"], ["f"]),
             helper.make_node("Sub", ["zero", "f"], ["g"]),            # 0 - f is NOT a no-op
             helper.make_node("Identity", ["g"], ["y"])]               # writes the graph output
    g = make_graph(nodes, {"one": np.float32(1.0), "zero": np.array([0.0], np.float32)})
    out = p2c.remove_noops(g)
    onnx.checker.check_model(out, full_check=True)
    assert [n.op_type for n in out.graph.node] == ["Relu", "Sub"]
    assert out.graph.node[-1].output[0] == "y" and out.graph.node[0].input[0] == "x"
    x = RNG.standard_normal((2, 3, 16, 16)).astype(np.float32)
    np.testing.assert_allclose(run_onnx(out, x=x), run_onnx(g, x=x))


def test_remove_noops_keeps_what_it_must():
    nodes = [helper.make_node("Mul", ["x", "ones"], ["a"]),           # broadcasting [3,1,1]: may change shape
             helper.make_node("Transpose", ["a"], ["b"], perm=[0, 2, 1, 3]),
             helper.make_node("Identity", ["b"], ["y"])]
    g = make_graph(nodes, {"ones": np.ones((3, 1, 1), np.float32)})
    out = p2c.remove_noops(g)
    assert [n.op_type for n in out.graph.node] == ["Mul", "Transpose"]
    passthrough = make_graph([helper.make_node("Identity", ["x"], ["y"])], {})
    assert len(p2c.remove_noops(passthrough).graph.node) == 1          # input straight to output: keep it


def test_optimize_graph_reaches_a_fixed_point():
    inits = {"W": RNG.standard_normal((4, 3, 3, 3)).astype(np.float32), "s": np.ones(4, np.float32),
             "B": np.zeros(4, np.float32), "m": RNG.standard_normal(4).astype(np.float32),
             "v": np.ones(4, np.float32)}
    nodes = [helper.make_node("Identity", ["x"], ["x1"]),
             helper.make_node("Conv", ["x1", "W"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c", "s", "B", "m", "v"], ["bn"]),
             helper.make_node("Constant", [], ["half"], value_float=0.5),
             helper.make_node("Constant", [], ["two"], value_float=2.0),
             helper.make_node("Mul", ["half", "two"], ["one"]),
             helper.make_node("Mul", ["bn", "one"], ["y"])]             # a no-op only after folding
    g = make_graph(nodes, inits, outputs=(("y", [None, 4, 16, 16]),))
    out, report = p2c.optimize_graph(g)
    assert [n.op_type for n in out.graph.node] == ["Conv"]
    assert (report.nodes_before, report.nodes_after) == (7, 1)
    assert report.ops_before["Constant"] == 2 and report.ops_after == {"Conv": 1}
    assert sum(removed for _, removed in report.passes) == 6
    assert {name for name, _ in report.passes} == {"remove_noops", "fold_batchnorm_onnx", "fold_constants"}
    x = RNG.standard_normal((2, 3, 16, 16)).astype(np.float32)
    np.testing.assert_allclose(run_onnx(out, x=x), run_onnx(g, x=x), rtol=1e-4, atol=1e-5)


def test_count_ops():
    g = _conv_bn_graph()
    assert p2c.count_ops(g) == {"Conv": 1, "BatchNormalization": 1}
