# REFERENCE SOLUTION: excluded from the learner release (make release).
"""Task 4.7: export the classifier for the device, two ways.

A device does not run your training framework. It runs a small runtime and a file: an ONNX model for ONNX
Runtime (which ships for ARM64 boards with the XNNPACK and TensorRT execution providers), or a ``.pte`` program
for ExecuTorch (PyTorch's own edge runtime, a C++ library of a few hundred kB with XNNPACK as its CPU delegate).
INT8 makes the file four times smaller and, on CPUs with integer dot-product instructions, the model faster.

Guide: EDGE_DEPLOYMENT_GUIDE.md#task-47-export-for-the-device
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

__all__ = ["export_onnx", "quantize_int8", "export_executorch"]


# -----------------------------------------------------------------------------------------------
# ## Task 4.7: export for the device
# -----------------------------------------------------------------------------------------------
def export_onnx(model: nn.Module, path: str | Path) -> Path:
    """Export a crop classifier to ONNX with a dynamic batch dimension.

    Args:
        model: eval-mode module, float32 [N, 1, 32, 32] crops to [N, 10] logits.
        path: the ``.onnx`` file to write (its folder is created).

    Returns:
        ``path``, as a Path. The graph's input is named ``"crops"`` and its output ``"logits"``; N is dynamic.

    Tolerance the grader applies (p4.edge.export): ONNX Runtime's outputs equal the module's within 1e-3 (max abs)
    on fresh random crops of 1 to 8.

    Guide: EDGE_DEPLOYMENT_GUIDE.md#task-47-export-for-the-device
    """
    # BEGIN SOLUTION
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(model.eval(), (torch.zeros(2, 1, 32, 32),), str(path), input_names=["crops"],
                      output_names=["logits"], dynamic_axes={"crops": {0: "n"}, "logits": {0: "n"}},
                      opset_version=17, dynamo=False)
    return path
    # END SOLUTION
    """ # BEGIN PROMPT
    # 1. torch.onnx.export(model, (example,), str(path), input_names=["crops"], output_names=["logits"],
    #    dynamic_axes={...: {0: "n"}}, opset_version=17, dynamo=False)   (example: zeros [2, 1, 32, 32])
    # 2. Create path's folder first; return Path(path).
    raise NotImplementedError("Task 4.7: see EDGE_DEPLOYMENT_GUIDE.md#task-47-export-for-the-device")
    """  # END PROMPT


def quantize_int8(fp32_path: str | Path, int8_path: str | Path, calibration: np.ndarray) -> Path:
    """Static INT8 quantization of an exported classifier with ONNX Runtime, calibrated on real crops.

    Args:
        fp32_path: the FP32 ``.onnx`` from :func:`export_onnx` (input ``"crops"``).
        int8_path: the INT8 ``.onnx`` to write.
        calibration: float32 [M, 1, 32, 32] crops the detector cut (``models.calibration_crops``).

    Returns:
        ``int8_path``, as a Path: QDQ format, weights int8 per channel, activations uint8.

    Tolerance the grader applies (p4.edge.export): the INT8 file is at most 35 % of the FP32 file's size, and its
    top-1 agrees with the FP32 model's on at least 97 % of fresh crops from a clip.

    Guide: EDGE_DEPLOYMENT_GUIDE.md#task-47-export-for-the-device
    """
    # BEGIN SOLUTION
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._it = iter([{"crops": calibration[i:i + 1]} for i in range(len(calibration))])

        def get_next(self):
            return next(self._it, None)

    int8_path = Path(int8_path)
    int8_path.parent.mkdir(parents=True, exist_ok=True)
    quantize_static(str(fp32_path), str(int8_path), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return int8_path
    # END SOLUTION
    """ # BEGIN PROMPT
    # 1. A CalibrationDataReader whose get_next() returns {"crops": one crop [1, 1, 32, 32]} until None.
    # 2. onnxruntime.quantization.quantize_static(fp32, int8, reader, quant_format=QuantFormat.QDQ,
    #    per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    raise NotImplementedError("Task 4.7: see EDGE_DEPLOYMENT_GUIDE.md#task-47-export-for-the-device")
    """  # END PROMPT


def export_executorch(model: nn.Module, path: str | Path, *, int8: bool = False,
                      calibration: np.ndarray | None = None) -> Path:
    """Export a crop classifier to an ExecuTorch program lowered to XNNPACK, in FP32 or PT2E INT8.

    Args:
        model: eval-mode module, float32 [N, 1, 32, 32] crops to [N, 10] logits.
        path: the ``.pte`` file to write.
        int8: quantize with PT2E (``XNNPACKQuantizer``, symmetric, per channel) before lowering.
        calibration: float32 [M, 1, 32, 32] crops for the observers (needed when ``int8``).

    Returns:
        ``path``, as a Path. The program's ``forward`` takes a [4, 1, 32, 32] batch (static shape).

    Raises:
        ValueError: ``int8`` without calibration crops.

    Tolerance the grader applies (p4.edge.executorch): ExecuTorch's runtime gives the module's outputs within
    1e-3 (FP32) and the same top-1 on at least 97 % of crops (INT8); the INT8 program is at most 35 % of the FP32 one.

    Guide: EDGE_DEPLOYMENT_GUIDE.md#task-47-export-for-the-device
    """
    # BEGIN SOLUTION
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    example = (torch.zeros(4, 1, 32, 32),)
    program = torch.export.export(model.eval(), example)
    if int8:
        if calibration is None or not len(calibration):
            raise ValueError("int8=True needs calibration crops")
        from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (XNNPACKQuantizer,
                                                                             get_symmetric_quantization_config)
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

        quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
        prepared = prepare_pt2e(program.module(), quantizer)
        crops = torch.from_numpy(np.asarray(calibration, np.float32))
        for i in range(0, len(crops) - 3, 4):
            prepared(crops[i:i + 4])
        program = torch.export.export(convert_pt2e(prepared), example)
    lowered = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()]).to_executorch()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(lowered.buffer)
    return path
    # END SOLUTION
    """ # BEGIN PROMPT
    # 1. program = torch.export.export(model, (zeros [4, 1, 32, 32],))
    # 2. int8: XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True));
    #    prepared = prepare_pt2e(program.module(), quantizer); run the calibration crops through it in
    #    batches of 4; program = torch.export.export(convert_pt2e(prepared), example)
    # 3. to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()]).to_executorch(); write .buffer
    raise NotImplementedError("Task 4.7: see EDGE_DEPLOYMENT_GUIDE.md#task-47-export-for-the-device")
    """  # END PROMPT
