"""Shared fixtures for the Phase 2 compilation tests: a tiny CNN with batch norms, and ONNX graphs
built by hand whose optimized form is known. Everything is small (3x16x16 inputs) so the folder
runs in well under a minute on two CPU cores."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from tinymodels import TinyCNN, seeded

__all__ = ["TinyNet", "make_tiny", "make_graph", "run_onnx", "IMAGE"]

IMAGE = (3, 16, 16)   # [C, H, W] of every test input


def TinyNet(num_classes: int = 10) -> TinyCNN:
    """conv-BN-ReLU (bias-free conv), conv-BN-ReLU (with conv bias), pool, dropout, linear."""
    return TinyCNN(num_classes, first_conv_bias=False)


def make_tiny(seed: int = 0) -> TinyCNN:
    """A seeded TinyNet in eval mode with non-trivial batch-norm statistics and affine parameters."""
    return seeded(TinyNet, seed, affine=True)


def make_graph(nodes, initializers: dict[str, np.ndarray], *, inputs=(("x", [None, 3, 16, 16]),),
               outputs=(("y", [None, 3, 16, 16]),), opset: int = 17):
    """An ONNX model from helper nodes, float32 inputs/outputs (``None`` dims become symbolic "N")."""
    from onnx import TensorProto, helper, numpy_helper

    def vi(name, shape):
        dims = [d if d is not None else "N" for d in shape]
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, dims)

    graph = helper.make_graph(list(nodes), "test", [vi(n, s) for n, s in inputs], [vi(n, s) for n, s in outputs],
                              [numpy_helper.from_array(np.asarray(v), k) for k, v in initializers.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def run_onnx(model, **feeds: np.ndarray) -> np.ndarray:
    """First output of a graph, run by ONNX Runtime with its own optimizations off."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return session.run(None, {k: np.asarray(v, dtype=np.float32) for k, v in feeds.items()})[0]


@pytest.fixture
def tiny() -> TinyNet:
    return make_tiny()


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory) -> Path:
    """The seeded TinyNet as ONNX with a dynamic batch, exported here (not by the code under test, so
    the Task 2.9 and 2.11 tests do not depend on Task 2.7)."""
    import warnings

    path = tmp_path_factory.mktemp("export") / "tiny.onnx"
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(make_tiny(), (torch.randn(2, *IMAGE),), str(path), dynamo=False, opset_version=17,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    return path
