"""Workloads and baselines the Phase 2 compilation graders (tasks 2.7-2.11) build for themselves.

Nothing here comes from the learner: the trained digits model, the grader's own ONNX exports and
ONNX Runtime sessions, hand-built ONNX graphs whose optimal form is known, a Conv+BN model with
random statistics drawn per grade. Expensive things (the digits data, a ResNet-18 export) are cached
per grading process.
"""
from __future__ import annotations

import functools
import random
import tempfile
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

__all__ = [
    "SPEED_THREADS", "fresh_seed", "digits_resnet18", "digits_cnn", "grader_export", "grader_session",
    "run_session", "rel_diff", "resnet18_224", "resnet18_224_onnx", "ConvBNNet", "conv_bn_model", "bn_statistics",
    "LOW_VAR_SHARE",
    "bn_graph", "cleanup_graph", "run_graph", "tensorrt_or_skip",
]

#: Threads for every CPU speed comparison, on both sides. One thread: on a shared 2-core machine a
#: two-thread PyTorch op waits for its slowest core, and a neighbour's job stealing one core turned
#: a 55 ms eager ResNet-18 call into 900 ms here while ONNX Runtime barely moved, which would have
#: "measured" a 14x speedup. At one thread both sides run undisturbed (ratios steady within 5 %).
SPEED_THREADS = 1


def fresh_seed() -> int:
    """A seed the learner cannot predict (random statistics, perturbations, batch sizes per grade)."""
    return random.SystemRandom().randrange(2**31)


# ## Trained models and data (catalog) --------------------------------------------------------

@functools.lru_cache(maxsize=1)
def digits_resnet18() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """The trained ``digits_resnet18`` (eval), test images float32 [359, 3, 64, 64], labels int64 [359]."""
    from labdata import catalog

    entry = catalog.get("digits_resnet18")
    x, y = entry.dataset("test")
    return entry.model.eval(), x, y


@functools.lru_cache(maxsize=1)
def digits_cnn() -> tuple[nn.Module, torch.Tensor]:
    """The trained ``digits_cnn`` (eval) and its test images float32 [359, 1, 32, 32]."""
    from labdata import catalog

    entry = catalog.get("digits_cnn")
    return entry.model.eval(), entry.dataset("test")[0]


# ## The grader's own ONNX files and sessions --------------------------------------------------

def grader_export(model: nn.Module, example: torch.Tensor, path: Path) -> Path:
    """Export with a dynamic batch the grader's way (legacy tracer: fast; torch.export as fallback)."""
    kw = dict(input_names=["input"], output_names=["logits"])
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(model.eval(), (example,), str(path), dynamo=False, opset_version=17,
                              dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, **kw)
        except Exception:  # the legacy exporter may be gone in a future torch
            torch.onnx.export(model.eval(), (example,), str(path), dynamic_shapes=({0: "batch"},),
                              external_data=False, verbose=False, **kw)
    return path


def grader_session(path, *, threads: int = SPEED_THREADS, level: str = "ORT_ENABLE_ALL",
                   optimized_path: str | None = None):
    """The grader's own CPU session of an ONNX file (pinned threads, sequential)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
    so.log_severity_level = 3  # no "hardware specific" warning when saving a level-ALL graph
    if optimized_path:
        so.optimized_model_filepath = str(optimized_path)
    src = path.SerializeToString() if hasattr(path, "SerializeToString") else str(path)
    return ort.InferenceSession(src, sess_options=so, providers=["CPUExecutionProvider"])


def run_session(session, x: torch.Tensor) -> torch.Tensor:
    """Run a session's first input on a CPU tensor; the first output as a float32 tensor."""
    out = session.run(None, {session.get_inputs()[0].name: x.detach().cpu().numpy()})[0]
    return torch.from_numpy(np.asarray(out)).float()


def rel_diff(got: torch.Tensor, want: torch.Tensor) -> float:
    """max |got - want| / max |want| (the scale of the whole output, so near-zero logits don't explode it)."""
    return float((got.float() - want.float()).abs().max() / want.float().abs().max().clamp_min(1e-12))


@functools.lru_cache(maxsize=1)
def resnet18_224() -> nn.Module:
    """Untrained torchvision ResNet-18, 1000 classes (a speed workload), eval mode, seeded."""
    import torchvision

    torch.manual_seed(0)
    return torchvision.models.resnet18(weights=None).eval()


@functools.lru_cache(maxsize=1)
def resnet18_224_onnx() -> Path:
    """The grader's own ONNX export of ``resnet18_224()`` (cached for this grading process)."""
    folder = Path(tempfile.mkdtemp(prefix="grader-r18-"))
    return grader_export(resnet18_224(), torch.randn(2, 3, 224, 224), folder / "resnet18.onnx")


# ## Task 2.8: a Conv+BN model and hand-built ONNX graphs ---------------------------------------

class ConvBNNet(nn.Module):
    """Conv-BN pairs in every form: in an nn.Sequential, as attributes, with and without conv bias,
    strided, grouped, inside a residual block. [B, 3, 16, 16] -> [B, 10]."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=True), nn.BatchNorm2d(16), nn.ReLU())
        self.conv1 = nn.Conv2d(16, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 16, 3, padding=1, groups=4, bias=False)
        self.bn2 = nn.BatchNorm2d(16)
        self.down = nn.Sequential(nn.Conv2d(16, 32, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(32),
                                  nn.ReLU())
        self.head = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)                                              # [B, 16, 16, 16]
        x = torch.relu(x + self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))))
        x = self.down(x)                                              # [B, 32, 8, 8]
        return self.head(x.mean((2, 3)))


#: In every batch norm the grader builds, this share of the channels (at least 2) has a running variance
#: comparable to eps (eps x U(0.25, 4)), as dead or near-constant channels have in trained networks, with
#: the scale shrunk to match so the channel's output keeps its size. On those channels forgetting eps, or
#: adding it outside the square root, changes the output by 10 % or more: with variances in [0.5, 2] alone
#: it changed the outputs by as little as 7e-6 relative, and a fold that forgot eps passed on ~1 seed in 100.
LOW_VAR_SHARE = 0.25


def _low_var_channels(n: int, pick: Callable[[int], np.ndarray]) -> np.ndarray:
    """Indices of the channels whose running variance is drawn near eps (``pick(n)``: a random permutation)."""
    return np.sort(pick(n)[:max(2, int(n * LOW_VAR_SHARE))])


def bn_statistics(n: int, eps: float, rand: Callable[[int], np.ndarray], randn: Callable[[int], np.ndarray],
                  perm: Callable[[int], np.ndarray], *, var_range=(0.5, 2.0), scale_range=(0.5, 1.5),
                  mean_std: float = 0.5, bias_std: float = 0.2) -> dict[str, np.ndarray]:
    """Random batch-norm statistics for ``n`` channels where ``eps`` matters on every draw (see LOW_VAR_SHARE).

    ``rand`` / ``randn`` / ``perm`` draw ``n`` uniform [0, 1) / normal / a permutation of ``range(n)`` from the
    caller's seeded generator. Returns float64 arrays ``scale``, ``bias``, ``mean``, ``var`` ([n] each).
    """
    u = lambda lo_hi: lo_hi[0] + (lo_hi[1] - lo_hi[0]) * rand(n)  # noqa: E731
    stats = {"scale": u(scale_range), "bias": randn(n) * bias_std, "mean": randn(n) * mean_std, "var": u(var_range)}
    low = _low_var_channels(n, perm)
    stats["var"][low] = eps * (0.25 + 3.75 * rand(n)[:len(low)])
    stats["scale"][low] *= np.sqrt(stats["var"][low] + eps)
    return stats


def conv_bn_model(seed: int) -> ConvBNNet:
    """A ConvBNNet with random weights and random (non-trivial) batch-norm statistics, eval mode.

    Each batch norm: eps log-uniform in [1e-5, 1e-3], statistics from :func:`bn_statistics` (a quarter of
    the channels with a running variance near eps, so a fold that mishandles eps fails on every seed).
    """
    g = torch.Generator().manual_seed(seed)
    rand = lambda n: torch.rand(n, generator=g, dtype=torch.float64).numpy()  # noqa: E731
    randn = lambda n: torch.randn(n, generator=g, dtype=torch.float64).numpy()  # noqa: E731
    perm = lambda n: torch.randperm(n, generator=g).numpy()  # noqa: E731
    m = ConvBNNet()
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.eps = float(10 ** -(3 + 2 * torch.rand(1, generator=g).item()))   # 1e-5 .. 1e-3
                st = bn_statistics(mod.num_features, mod.eps, rand, randn, perm)
                for name, attr in (("mean", "running_mean"), ("var", "running_var"), ("scale", "weight"),
                                   ("bias", "bias")):
                    getattr(mod, attr).copy_(torch.from_numpy(st[name]).float())
    return m.eval()


def _init(name: str, a: np.ndarray):
    from onnx import numpy_helper

    return numpy_helper.from_array(np.asarray(a), name)


def _conv_bn(nodes, inits, rng, x: str, cin: int, cout: int, tag: str, *, bias: bool, stride: int = 1) -> str:
    from onnx import helper

    inits.append(_init(f"{tag}_W", (rng.standard_normal((cout, cin, 3, 3)) * (2 / (9 * cin)) ** 0.5).astype(np.float32)))
    conv_in = [x, f"{tag}_W"]
    if bias:
        inits.append(_init(f"{tag}_b", (rng.standard_normal(cout) * 0.1).astype(np.float32)))
        conv_in.append(f"{tag}_b")
    nodes.append(helper.make_node("Conv", conv_in, [f"{tag}_conv"], name=f"{tag}_conv", pads=[1, 1, 1, 1],
                                  strides=[stride, stride], kernel_shape=[3, 3]))
    eps = float(np.float32(10 ** rng.uniform(-5, -3)))   # as the attribute stores it
    stats = bn_statistics(cout, eps, rng.random, rng.standard_normal, rng.permutation)
    for what in ("scale", "bias", "mean", "var"):
        inits.append(_init(f"{tag}_bn_{what}", stats[what].astype(np.float32)))
    nodes.append(helper.make_node("BatchNormalization", [f"{tag}_conv"] + [f"{tag}_bn_{w}" for w in
                                  ("scale", "bias", "mean", "var")], [f"{tag}_bn"], name=f"{tag}_bn", epsilon=eps))
    nodes.append(helper.make_node("Relu", [f"{tag}_bn"], [f"{tag}_relu"], name=f"{tag}_relu"))
    return f"{tag}_relu"


def _model(nodes, inits, out: str):
    from onnx import TensorProto, helper

    graph = helper.make_graph(nodes, "grader_graph",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 16, 16])],
                              [helper.make_tensor_value_info(out, TensorProto.FLOAT, ["N", 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="inference-lab-grader")
    model.ir_version = 8
    return model


def bn_graph(seed: int):
    """Conv-BN-ReLU twice (with and without conv bias), pooling, a classifier: 9 nodes, 2 of them
    BatchNormalization, every one foldable. Input "input" [N, 3, 16, 16], output "logits" [N, 10]."""
    from onnx import helper

    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    h = _conv_bn(nodes, inits, rng, "input", 3, 8, "a", bias=True)
    h = _conv_bn(nodes, inits, rng, h, 8, 16, "b", bias=False, stride=2)
    nodes.append(helper.make_node("GlobalAveragePool", [h], ["gap"], name="gap"))
    nodes.append(helper.make_node("Flatten", ["gap"], ["flat"], name="flat"))
    inits += [_init("fc_W", (rng.standard_normal((10, 16)) * 0.3).astype(np.float32)),
              _init("fc_b", (rng.standard_normal(10) * 0.1).astype(np.float32))]
    nodes.append(helper.make_node("Gemm", ["flat", "fc_W", "fc_b"], ["logits"], name="fc", transB=1))
    return _model(nodes, inits, "logits")


#: cleanup_graph: nodes before, and the fewest a complete cleanup leaves (Conv, Relu, Conv, Relu,
#: GlobalAveragePool, Reshape, Gemm).
CLEANUP_NODES, CLEANUP_MINIMUM = 21, 7


def cleanup_graph(seed: int):
    """A graph with every kind of removable node (21 nodes; 7 left after a complete cleanup).

    Removable: 2 Identity, 1 Dropout (inference), 2 BatchNormalization after Convs, a constant
    subgraph (2 Constant + Mul) whose value is 1 feeding a Mul (a no-op once folded), a Constant
    shape for a Reshape, a Transpose of an initializer, an Add of two initializers, a Transpose with
    the identity permutation, and a Constant that feeds nothing but the Add.
    """
    from onnx import helper

    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    nodes.append(helper.make_node("Identity", ["input"], ["x_id"], name="id_in"))
    h = _conv_bn(nodes, inits, rng, "x_id", 3, 8, "a", bias=True)
    nodes.append(helper.make_node("Dropout", [h], ["drop"], name="dropout"))
    h = _conv_bn(nodes, inits, rng, "drop", 8, 16, "b", bias=False, stride=2)
    two = float(rng.choice([2.0, 4.0, 0.25]))
    nodes.append(helper.make_node("Constant", [], ["c_two"], name="c_two", value_float=two))
    nodes.append(helper.make_node("Constant", [], ["c_inv"], name="c_inv", value_float=1.0 / two))
    nodes.append(helper.make_node("Mul", ["c_two", "c_inv"], ["c_one"], name="c_one"))
    nodes.append(helper.make_node("Mul", [h, "c_one"], ["scaled"], name="scale_by_one"))
    nodes.append(helper.make_node("Transpose", ["scaled"], ["scaled_t"], name="transpose_noop", perm=[0, 1, 2, 3]))
    nodes.append(helper.make_node("GlobalAveragePool", ["scaled_t"], ["gap"], name="gap"))
    nodes.append(helper.make_node("Constant", [], ["shape"], name="c_shape",
                                  value=_init("shape_value", np.array([-1, 16], dtype=np.int64))))
    nodes.append(helper.make_node("Reshape", ["gap", "shape"], ["flat"], name="reshape"))
    nodes.append(helper.make_node("Identity", ["flat"], ["flat_id"], name="id_flat"))
    inits.append(_init("fc_Wt", (rng.standard_normal((16, 10)) * 0.3).astype(np.float32)))  # [in, out]
    nodes.append(helper.make_node("Transpose", ["fc_Wt"], ["fc_W"], name="fc_w_transpose", perm=[1, 0]))
    b = (rng.standard_normal(10) * 0.1).astype(np.float32)
    inits.append(_init("fc_b0", b))
    nodes.append(helper.make_node("Constant", [], ["fc_b1"], name="c_fc_b1",
                                  value=_init("fc_b1_value", (rng.standard_normal(10) * 0.1).astype(np.float32))))
    nodes.append(helper.make_node("Add", ["fc_b0", "fc_b1"], ["fc_b"], name="fc_bias_add"))
    nodes.append(helper.make_node("Gemm", ["flat_id", "fc_W", "fc_b"], ["logits"], name="fc", transB=1))
    model = _model(nodes, inits, "logits")
    assert len(model.graph.node) == CLEANUP_NODES, len(model.graph.node)
    return model


def run_graph(model, x: torch.Tensor) -> torch.Tensor:
    """Run an ONNX graph with every ONNX Runtime optimization off (so ORT cannot fix it up itself)."""
    return run_session(grader_session(model, level="ORT_DISABLE_ALL"), x)


# ## Task 2.11: TensorRT ---------------------------------------------------------------------

def tensorrt_or_skip():
    """The ``tensorrt`` module, or a pytest skip that says why not."""
    import pytest

    if not torch.cuda.is_available():
        pytest.skip("needs an NVIDIA GPU (torch.cuda.is_available() is False)")
    try:
        import tensorrt
    except Exception as e:  # noqa: BLE001 - missing or broken install: skip with the reason
        pytest.skip(f"tensorrt is not installed ({type(e).__name__}); pip install '.[gpu]' on an NVIDIA machine")
    return tensorrt
