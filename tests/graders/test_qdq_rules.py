"""The Q/DQ rules of ``p2.compilation.trt_qdq_onnx`` (and of the fake TensorRT) on hand-built graphs whose answer is known:
what TensorRT's parser refuses, and which layers a strongly typed engine would leave in FP32."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from graders.phase2.compilation.qdq_rules import parse_problems, unquantized_layers

pytestmark = pytest.mark.phase2_task11


def _conv(*, zero=None, act_qdq: bool = True, bias_dtype=np.float32):
    """x -> [Q -> DQ] -> Conv(weight: W -> Q -> DQ, bias) -> y, with the zero point (int8 0 by default) and bias type given."""
    zero = np.int8(0) if zero is None else zero
    inits = {"w": np.ones((4, 3, 3, 3), np.float32), "ws": np.full(4, 0.01, np.float32),
             "wz": np.zeros(4, np.int8), "s": np.float32(0.02), "z": np.asarray(zero), "b": np.zeros(4, bias_dtype)}
    nodes = [helper.make_node("QuantizeLinear", ["w", "ws", "wz"], ["wq"], axis=0, name="wq"),
             helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["wd"], axis=0, name="wd")]
    conv_in = "x"
    if act_qdq:
        nodes += [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"], name="xq"),
                  helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"], name="xd")]
        conv_in = "xd"
    bias = "b"
    if bias_dtype == np.int32:
        inits["bs"], inits["bz"] = np.full(4, 2e-4, np.float32), np.zeros(4, np.int32)
        nodes.append(helper.make_node("DequantizeLinear", ["b", "bs", "bz"], ["bd"], axis=0, name="bd"))
        bias = "bd"
    nodes.append(helper.make_node("Conv", [conv_in, "wd", bias], ["y"], name="conv"))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 6, 6])],
                              [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_symmetric_int8_with_an_fp32_bias_is_clean():
    model = _conv()
    assert parse_problems(model) == [] and unquantized_layers(model) == []


def test_an_asymmetric_or_uint8_zero_point_is_refused():
    for zero in (np.int8(3), np.uint8(128)):
        problems = parse_problems(_conv(zero=zero))
        assert len(problems) == 2 and all("symmetric INT8" in p for p in problems), problems   # xq and xd


def test_an_int32_bias_dequantize_is_refused_for_what_it_is():
    problems = parse_problems(_conv(bias_dtype=np.int32))
    assert len(problems) == 1 and "INT32 DequantizeLinear" in problems[0], problems


def test_a_weight_only_quantized_layer_is_not_int8():
    model = _conv(act_qdq=False)
    assert parse_problems(model) == [] and unquantized_layers(model) == ["conv"]
