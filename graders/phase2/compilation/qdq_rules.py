"""What makes a Q/DQ ONNX file one TensorRT can build as an INT8 engine (explicit quantization), in one place.

Used by the grader's ``p2.compilation.trt_qdq_onnx`` and by the fake TensorRT of the course tests. The rules
are TensorRT's (its developer guide, "Explicit Quantization", and its ONNX parser's errors):

- every ``QuantizeLinear`` / ``DequantizeLinear`` is **symmetric INT8**: its zero point is an int8
  tensor of zeros (ONNX Runtime's default, asymmetric UINT8 activations, does not parse);
- no ``DequantizeLinear`` of an INT32 tensor (a quantized bias: "only activation types allowed as input
  to this layer"); biases stay FP32 and TensorRT fuses them;
- and, for the file to be an INT8 model at all, every Conv / Gemm / MatMul reads both its input and its
  weight through a ``DequantizeLinear`` (TensorRT runs a layer in INT8 only when both are quantized; a layer
  without them runs in FP32 in a strongly typed network).
"""
from __future__ import annotations

import numpy as np

__all__ = ["parse_problems", "unquantized_layers", "QUANTIZABLE"]

#: Layers whose input (0) and weight (1) must come through Q/DQ for the model to count as INT8.
QUANTIZABLE = ("Conv", "Gemm", "MatMul")


def _initializers(model) -> dict[str, np.ndarray]:
    from onnx import numpy_helper

    return {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}


def parse_problems(model) -> list[str]:
    """The errors TensorRT's parser would report for the Q/DQ nodes of ``model`` (an ``onnx.ModelProto``); [] if none."""
    inits = _initializers(model)
    problems = []
    for node in model.graph.node:
        if node.op_type not in ("QuantizeLinear", "DequantizeLinear"):
            continue
        x = inits.get(node.input[0])
        if node.op_type == "DequantizeLinear" and x is not None and x.dtype == np.int32:
            problems.append(f"DequantizeLinear {node.name!r}: only activation types allowed as input to this layer "
                            f"(an INT32 DequantizeLinear, a quantized bias: keep biases in FP32)")
            continue
        zero = inits.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        if zero is None or zero.dtype != np.int8 or np.any(zero != 0):
            got = "no zero point (uint8)" if zero is None else f"{zero.dtype} zero point {np.unique(zero)[:4].tolist()}"
            problems.append(f"{node.op_type} {node.name!r}: TensorRT supports only symmetric INT8 Q/DQ "
                            f"(an int8 zero point of 0), got {got}")
    return problems


def unquantized_layers(model) -> list[str]:
    """Names of the Conv/Gemm/MatMul nodes whose input or weight does not come from a ``DequantizeLinear``."""
    produced_by = {out: node for node in model.graph.node for out in node.output}

    def dequantized(name: str) -> bool:
        source = produced_by.get(name)
        return source is not None and source.op_type == "DequantizeLinear"

    return [node.name or node.output[0] for node in model.graph.node
            if node.op_type in QUANTIZABLE and len(node.input) > 1
            and not (dequantized(node.input[0]) and dequantized(node.input[1]))]
