"""A tiny Triton model repository for the server part's tests: ``affine`` = x @ W + b, made with onnx.helper."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

W = (np.arange(12, dtype=np.float32).reshape(4, 3) - 5) / 3
B = np.array([0.5, -1.0, 2.0], dtype=np.float32)

CONFIG = """name: "affine"
max_batch_size: 8
input [ { name: "x" data_type: TYPE_FP32 dims: [ 4 ] } ]
output [ { name: "y" data_type: TYPE_FP32 dims: [ 3 ] } ]
dynamic_batching { max_queue_delay_microseconds: 1000 preferred_batch_size: [ 4, 8 ] }
instance_group [ { count: 2 kind: KIND_CPU } ]
"""


def expected(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32) @ W + B


def affine_repository(root: Path, versions=(1,), config: str = CONFIG) -> Path:
    """``root/affine/config.pbtxt`` and ``root/affine/<v>/model.onnx`` for each version; returns the model folder."""
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["xw"]), helper.make_node("Add", ["xw", "B"], ["y"])], "affine",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3])],
        [numpy_helper.from_array(W, "W"), numpy_helper.from_array(B, "B")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    folder = root / "affine"
    for v in versions:
        (folder / str(v)).mkdir(parents=True, exist_ok=True)
        onnx.save(model, folder / str(v) / "model.onnx")
    (folder / "config.pbtxt").write_text(config, encoding="utf-8")
    return folder
