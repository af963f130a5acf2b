# REFERENCE SOLUTION: excluded from the learner release (make release).
"""Task 2.11: TensorRT engines from ONNX in FP32, FP16 and INT8; serialise, reload, run on device buffers.

Written for TensorRT 11 and 10 (``tensorrt>=10,<12``) with one code path: a **strongly typed** network
whose precision comes from the ONNX file itself. FP16 is an FP16 ONNX graph (FP32 inputs and outputs);
INT8 is **explicit quantization**, a Q/DQ ONNX file made with ONNX Runtime's ``quantize_static`` (the
same file runs in ONNX Runtime). TensorRT 11 removed the precision builder flags (``BuilderFlag.FP16``,
``BuilderFlag.INT8``) and the INT8 calibrators that older tutorials use.

``tensorrt`` is imported lazily (it is part of the optional ``gpu`` extra and needs an NVIDIA GPU);
``fp16_onnx`` and ``qdq_onnx`` need only ``onnx`` and ``onnxruntime`` and run on any machine.
Guide: COMPILATION_GUIDE.md#task-211-tensorrt
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..types import TRTConfig

__all__ = ["tensorrt_available", "TRTBatchReader", "TRTRunner", "fp16_onnx", "qdq_onnx", "build_engine",
           "load_engine", "run_engine"]


# ---------------------------------------------------------------------------------------------------
# Helpers (written in full)
# ---------------------------------------------------------------------------------------------------
def tensorrt_available() -> tuple[bool, str]:
    """``(True, "tensorrt 11.x")`` when TensorRT imports and a CUDA GPU is visible, else ``(False, reason)``."""
    try:
        import tensorrt
    except Exception as e:  # ImportError, or a broken install that fails on import
        return False, f"tensorrt is not installed ({type(e).__name__}: {str(e)[:120]}); pip install '.[gpu]'"
    if not torch.cuda.is_available():
        return False, "needs an NVIDIA GPU (torch.cuda.is_available() is False)"
    return True, f"tensorrt {tensorrt.__version__}"


class TRTBatchReader:
    """Calibration batches, read like ONNX Runtime's ``CalibrationDataReader`` (and usable as one).

    ``get_next()`` returns ``{input_name: float32 array [batch_size, C, H, W]}`` or None when the
    data (or ``max_batches``) is used up; ``rewind()`` starts again. Only full batches are given.

    Raises:
        ValueError: ``batch_size < 1``, or fewer images than one full batch.
    """

    def __init__(self, images: torch.Tensor | np.ndarray, batch_size: int = 8, *, input_name: str = "input",
                 max_batches: int | None = None) -> None:
        data = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
        if batch_size < 1 or data.shape[0] < batch_size:
            raise ValueError(f"need at least one full batch of {batch_size}, got {data.shape[0]} images")
        self.data = np.ascontiguousarray(data, dtype=np.float32)
        self.batch_size, self.input_name = int(batch_size), input_name
        full = self.data.shape[0] // self.batch_size
        self.num_batches = full if max_batches is None else min(full, int(max_batches))
        self.index = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        """The next full batch as ``{input_name: float32 array}``, or None once they are used up."""
        if self.index >= self.num_batches:
            return None
        i = self.index * self.batch_size
        self.index += 1
        return {self.input_name: self.data[i:i + self.batch_size]}

    def rewind(self) -> None:
        """Start again from the first batch."""
        self.index = 0


@dataclass
class TRTRunner:
    """A deserialised engine, its execution context and its stream: ``runner(x_cuda) -> logits_cuda``.

    Attributes:
        engine: the ``tensorrt.ICudaEngine``; context: its ``IExecutionContext``; runtime: the
            ``tensorrt.Runtime`` that deserialised it (kept alive as long as the engine).
        input_name, output_name: the engine's I/O tensor names.
        stream: the non-default ``torch.cuda.Stream`` the engine runs on (TensorRT synchronises
            extra work on the legacy default stream, whose handle is 0).
        device: the device of the engine's buffers (``"cuda:N"``).
    """

    engine: Any
    context: Any
    runtime: Any
    input_name: str
    output_name: str
    stream: Any = None
    device: str = "cuda"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return run_engine(self, x)


def _trt_logger():
    import tensorrt as trt

    global _LOGGER
    if _LOGGER is None:
        _LOGGER = trt.Logger(trt.Logger.WARNING)
    return _LOGGER


_LOGGER = None


def _caller_stream(device: str | torch.device):
    """The stream the caller queues its own work on: torch's current CUDA stream of ``device``."""
    return torch.cuda.current_stream(device)


def _new_stream():
    """A new non-default CUDA stream on the current CUDA device (a runner's own; ``.device`` says which)."""
    return torch.cuda.Stream()


# ---------------------------------------------------------------------------------------------------
# ## Task 2.11: TensorRT
# ---------------------------------------------------------------------------------------------------
def fp16_onnx(onnx_path: str | os.PathLike, out_path: str | os.PathLike) -> Path:
    """Write an FP16 copy of an FP32 ONNX model whose inputs and outputs stay FP32.

    A strongly typed TensorRT network runs each layer in the type its tensors have in the file, so
    this file is how an FP16 engine is asked for in TensorRT 11 (which has no FP16 builder flag).

    Args:
        onnx_path: an FP32 ONNX model.
        out_path: where to write the FP16 model (its folder must exist).

    Returns:
        ``Path(out_path)``. Every float32 initializer and intermediate tensor is float16; the graph's
        inputs and outputs keep float32 (a ``Cast`` after each input and before each output), so
        callers feed and read float32 as before. Outputs match the FP32 model to about 1e-3 relative.

    Tolerance the grader applies: p2.compilation.trt_fp16_speedup (top-1 within 1 point, 2e-2 relative
    on ResNet-18, through ``build_engine``).

    Guide: COMPILATION_GUIDE.md#task-211-tensorrt
    """
    # BEGIN SOLUTION
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load(str(onnx_path)), keep_io_types=True)
    onnx.save(model, str(out_path))
    return Path(out_path)
    # END SOLUTION
    """ # BEGIN PROMPT
    # Step 1: model = onnx.load(str(onnx_path)).
    # Step 2: convert it with ONNX Runtime's converter, keeping the graph's I/O in float32:
    #   from onnxruntime.transformers.float16 import convert_float_to_float16
    #   model16 = convert_float_to_float16(model, keep_io_types=True)
    # Step 3: onnx.save(model16, str(out_path)); return Path(out_path).
    raise NotImplementedError("Task 2.11: see COMPILATION_GUIDE.md#task-211-tensorrt")
    """  # END PROMPT


def qdq_onnx(onnx_path: str | os.PathLike, reader: TRTBatchReader, out_path: str | os.PathLike) -> Path:
    """Quantize an FP32 ONNX model to INT8 Q/DQ form that TensorRT builds (explicit quantization).

    Args:
        onnx_path: an FP32 ONNX model.
        reader: calibration batches (ONNX Runtime's ``CalibrationDataReader`` protocol: ``get_next()``
            gives a feed dict or None); it is rewound first and read to its end.
        out_path: where to write the quantized model (its folder must exist).

    Returns:
        ``Path(out_path)``: a QDQ model in the form TensorRT accepts: every ``QuantizeLinear`` and
        ``DequantizeLinear`` is **symmetric INT8** (int8 zero points, all 0), weights per output channel
        with their FP32 values behind a Q/DQ pair, biases left in FP32 (TensorRT rejects an INT32 bias
        ``DequantizeLinear``). The same file runs in ONNX Runtime.

    Tolerance the grader applies: p2.compilation.trt_qdq_onnx (the file's form, and top-1 within 1 point
    of eager FP32 in ONNX Runtime, full marks 0.5); p2.compilation.trt_int8_accuracy (the engine built
    from it, on a GPU).

    Guide: COMPILATION_GUIDE.md#task-211-tensorrt
    """
    # BEGIN SOLUTION
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    reader.rewind()
    quantize_static(str(onnx_path), str(out_path), reader, quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                    calibrate_method=CalibrationMethod.MinMax,
                    extra_options={"ActivationSymmetric": True, "WeightSymmetric": True,   # zero points 0
                                   "AddQDQPairToWeight": True,       # weights: FP32 -> Q -> DQ
                                   "DedicatedQDQPair": True,         # one Q/DQ pair per consumer
                                   "QuantizeBias": False})           # no INT32 bias DequantizeLinear
    return Path(out_path)
    # END SOLUTION
    """ # BEGIN PROMPT
    # Step 1: reader.rewind().
    # Step 2: onnxruntime.quantization.quantize_static(str(onnx_path), str(out_path), reader,
    #   quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QInt8,
    #   weight_type=QuantType.QInt8, extra_options={...}) with the options TensorRT needs:
    #   symmetric activations and weights (zero point 0), a Q/DQ pair on each weight, a dedicated pair per
    #   consumer, and no bias quantization (see the guide for the option names).
    # Step 3: return Path(out_path).
    raise NotImplementedError("Task 2.11: see COMPILATION_GUIDE.md#task-211-tensorrt")
    """  # END PROMPT


def build_engine(onnx_path: str | os.PathLike, config: TRTConfig | None = None,
                 calibration_reader: TRTBatchReader | None = None) -> bytes:
    """Build a serialised TensorRT engine from an FP32 ONNX file, as a strongly typed network.

    Args:
        onnx_path: an FP32 ONNX file whose input has a dynamic batch dimension (dimension 0).
        config: ``TRTConfig`` (precision, batch profile, workspace, calibration); None = FP16.
        calibration_reader: required for precision "int8": the batches ``qdq_onnx`` calibrates on (at
            most ``config.calibration_batches`` of them).

    Returns:
        The serialised engine (``bytes`` of ``builder.build_serialized_network``), built from the file
        that carries the precision: "fp32" the file itself (TF32 cleared, so results match PyTorch
        FP32), "fp16" ``fp16_onnx``'s copy, "int8" ``qdq_onnx``'s copy (``config.calibration_cache``
        names that Q/DQ file: reused when it exists, else written there). The network is created with
        ``NetworkDefinitionCreationFlag.STRONGLY_TYPED`` (always on in TensorRT 11), no precision flag is
        set, and one optimization profile covers batch ``min_batch..max_batch`` (tuned for ``opt_batch``).

    Raises:
        RuntimeError: the ONNX parser reports errors (the message lists them) or the build fails.
        ValueError: "int8" without a calibration reader (and no cached Q/DQ file).

    Tolerance the grader applies: p2.compilation.trt_fp32_equivalent (max |engine - eager| <= 1e-3, full 1e-4,
    top-1 agreement 100 %); p2.compilation.trt_fp16_speedup (>= 2x over PyTorch FP32 on the GPU, full 5x, with
    top-1 within 1 point on the digits); p2.compilation.trt_int8_accuracy (top-1 drop <= 1.0 point, full 0.5,
    engine at most 0.6x the FP32 engine's size).

    Guide: COMPILATION_GUIDE.md#task-211-tensorrt
    """
    # BEGIN SOLUTION
    import tensorrt as trt

    config = config or TRTConfig()
    cached = Path(config.calibration_cache) if config.calibration_cache else None
    if config.precision == "int8" and calibration_reader is None and not (cached and cached.is_file()):
        raise ValueError("an INT8 engine needs a calibration_reader (or a Q/DQ file at config.calibration_cache)")
    with tempfile.TemporaryDirectory(prefix="trt-build-") as work:
        source = Path(onnx_path)
        if config.precision == "fp16":
            source = fp16_onnx(source, Path(work) / "model_fp16.onnx")
        elif config.precision == "int8":
            if cached is not None and cached.is_file():
                source = cached
            else:
                calibration_reader.num_batches = min(calibration_reader.num_batches, config.calibration_batches)
                target = cached or Path(work) / "model_int8_qdq.onnx"
                target.parent.mkdir(parents=True, exist_ok=True)
                source = qdq_onnx(source, calibration_reader, target)

        logger = _trt_logger()
        builder = trt.Builder(logger)
        network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
        parser = trt.OnnxParser(network, logger)
        if not parser.parse_from_file(str(source)):
            errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
            raise RuntimeError(f"TensorRT could not parse {source.name}: " + "; ".join(errors))
        cfg = builder.create_builder_config()
        cfg.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(config.workspace_mb) << 20)
        profile = builder.create_optimization_profile()
        inp = network.get_input(0)
        rest = tuple(int(inp.shape[i]) for i in range(1, len(inp.shape)))   # [C, H, W]: static
        profile.set_shape(inp.name, (config.min_batch, *rest), (config.opt_batch, *rest), (config.max_batch, *rest))
        cfg.add_optimization_profile(profile)
        if config.precision == "fp32":
            cfg.clear_flag(trt.BuilderFlag.TF32)     # TF32 rounds FP32 matmuls to 10 mantissa bits
        serialized = builder.build_serialized_network(network, cfg)
    if serialized is None:
        raise RuntimeError("TensorRT failed to build the engine (see its log above)")
    return bytes(serialized)
    # END SOLUTION
    """ # BEGIN PROMPT
    # Step 1: config = config or TRTConfig(); "int8" without calibration_reader (and no existing file at
    #   config.calibration_cache) -> ValueError.
    # Step 2: the file that carries the precision, in a tempfile.TemporaryDirectory(): "fp32" onnx_path itself;
    #   "fp16" fp16_onnx(onnx_path, <tmp>/model_fp16.onnx); "int8" the cached Q/DQ file if it exists, else
    #   qdq_onnx(onnx_path, reader, config.calibration_cache or <tmp>/model_int8_qdq.onnx) with
    #   reader.num_batches capped at config.calibration_batches.
    # Step 3: builder = trt.Builder(_trt_logger());
    #   network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED));
    #   parser = trt.OnnxParser(network, logger); parser.parse_from_file(str(file)) or RuntimeError listing
    #   parser.get_error(i) for i in range(parser.num_errors).
    # Step 4: cfg = builder.create_builder_config(); cfg.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE,
    #   workspace_mb << 20); profile = builder.create_optimization_profile(); profile.set_shape(input name,
    #   (min_batch, C, H, W), (opt_batch, ...), (max_batch, ...)); cfg.add_optimization_profile(profile).
    #   "fp32": cfg.clear_flag(trt.BuilderFlag.TF32). No other precision flag: the file decides.
    # Step 5: serialized = builder.build_serialized_network(network, cfg); None -> RuntimeError; return bytes(serialized).
    raise NotImplementedError("Task 2.11: see COMPILATION_GUIDE.md#task-211-tensorrt")
    """  # END PROMPT


def load_engine(engine: bytes | str | os.PathLike, *, stream: Any = None) -> TRTRunner:
    """Deserialise an engine (bytes, or the path of a file holding them) and make it runnable.

    Args:
        engine: what ``build_engine`` returned, or a file it was written to.
        stream: the CUDA stream to run on; None makes a new non-default one on the current device
            (``_new_stream()``). Never the legacy default stream (``cuda_stream == 0``).

    Returns:
        A ``TRTRunner`` with the ``ICudaEngine`` from ``trt.Runtime.deserialize_cuda_engine``, one
        execution context (``engine.create_execution_context()``), the runtime, the input and output
        tensor names (``engine.get_tensor_name(i)`` for ``i < engine.num_io_tensors``, split by
        ``engine.get_tensor_mode(name)``), the stream, and the stream's device (``str(stream.device)``).

    Raises:
        RuntimeError: the bytes are not an engine for this TensorRT version and GPU.

    Tolerance the grader applies: p2.compilation.trt_fp32_equivalent reloads your engine from a file with this.

    Guide: COMPILATION_GUIDE.md#task-211-tensorrt
    """
    # BEGIN SOLUTION
    import tensorrt as trt

    data = engine if isinstance(engine, (bytes, bytearray, memoryview)) else Path(engine).read_bytes()
    runtime = trt.Runtime(_trt_logger())
    eng = runtime.deserialize_cuda_engine(bytes(data))
    if eng is None:
        raise RuntimeError("TensorRT could not deserialise the engine (built by another version or GPU?)")
    names = [eng.get_tensor_name(i) for i in range(eng.num_io_tensors)]
    inputs = [n for n in names if eng.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
    outputs = [n for n in names if eng.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
    stream = stream if stream is not None else _new_stream()
    return TRTRunner(engine=eng, context=eng.create_execution_context(), runtime=runtime,
                     input_name=inputs[0], output_name=outputs[0], stream=stream, device=str(stream.device))
    # END SOLUTION
    """ # BEGIN PROMPT
    # Step 1: data = the bytes, or Path(engine).read_bytes() for a path.
    # Step 2: runtime = trt.Runtime(_trt_logger()); eng = runtime.deserialize_cuda_engine(data); None -> RuntimeError.
    # Step 3: names = [eng.get_tensor_name(i) for i in range(eng.num_io_tensors)]; split them by
    #   eng.get_tensor_mode(name) == trt.TensorIOMode.INPUT / OUTPUT.
    # Step 4: stream = the given one, or _new_stream() when None;
    #   return TRTRunner(engine=eng, context=eng.create_execution_context(), runtime=runtime, input_name=...,
    #   output_name=..., stream=stream, device=str(stream.device)).
    raise NotImplementedError("Task 2.11: see COMPILATION_GUIDE.md#task-211-tensorrt")
    """  # END PROMPT


def run_engine(runner: TRTRunner, x: torch.Tensor) -> torch.Tensor:
    """Run one batch through the engine with torch tensors as its device buffers.

    Args:
        runner: from ``load_engine``.
        x: float32 ``[B, C, H, W]`` (moved to ``runner.device`` and made contiguous if it is not), with
            B in the engine's profile range.

    Returns:
        The output as a new tensor ``[B, classes]`` on ``runner.device`` (the engine's output dtype,
        float32 for an FP32-output ONNX model). The work is queued on ``runner.stream`` after the
        caller's pending work (``runner.stream.wait_stream(caller)``, the caller being
        ``_caller_stream(device)``), and the caller's stream waits for it in turn, so work the caller
        queues next sees the output: nothing is copied to the host and nothing synchronises.

    Raises:
        ValueError: ``context.set_input_shape`` refuses the shape (a batch outside the profile, wrong C/H/W).
        RuntimeError: ``execute_async_v3`` reports failure.

    Tolerance the grader applies: every TensorRT criterion calls your engine through this.

    Guide: COMPILATION_GUIDE.md#task-211-tensorrt
    """
    # BEGIN SOLUTION
    import tensorrt as trt

    ctx, eng = runner.context, runner.engine
    x = x.to(device=runner.device, dtype=torch.float32).contiguous()     # [B, C, H, W]
    if not ctx.set_input_shape(runner.input_name, tuple(x.shape)):
        raise ValueError(f"the engine refuses input shape {tuple(x.shape)}: is the batch inside its profile?")
    dims = ctx.get_tensor_shape(runner.output_name)
    shape = tuple(int(dims[i]) for i in range(len(dims)))                # [B, classes]
    dtypes = {trt.float32: torch.float32, trt.float16: torch.float16, trt.int32: torch.int32,
              trt.int8: torch.int8}
    out = torch.empty(shape, dtype=dtypes[eng.get_tensor_dtype(runner.output_name)], device=x.device)
    ctx.set_tensor_address(runner.input_name, int(x.data_ptr()))
    ctx.set_tensor_address(runner.output_name, int(out.data_ptr()))
    caller = _caller_stream(x.device)
    runner.stream.wait_stream(caller)          # x (and out's allocation) were queued on the caller's stream
    if not ctx.execute_async_v3(runner.stream.cuda_stream):
        raise RuntimeError("execute_async_v3 failed")
    caller.wait_stream(runner.stream)          # the caller's next work (and its synchronize) sees out
    return out
    # END SOLUTION
    """ # BEGIN PROMPT
    # Step 1: x = x.to(device=runner.device, dtype=torch.float32).contiguous()   # [B, C, H, W]
    # Step 2: ctx.set_input_shape(input_name, tuple(x.shape)) returns False for a shape outside the profile:
    #   raise ValueError then. out shape = tuple(ctx.get_tensor_shape(output_name)); out = torch.empty(shape,
    #   dtype=<torch dtype of engine.get_tensor_dtype(output_name)>, device=x.device).
    # Step 3: ctx.set_tensor_address(name, int(tensor.data_ptr())) for the input and the output.
    # Step 4: caller = _caller_stream(x.device); runner.stream.wait_stream(caller);
    #   ctx.execute_async_v3(runner.stream.cuda_stream) (False -> RuntimeError); caller.wait_stream(runner.stream);
    #   return out without synchronising.
    raise NotImplementedError("Task 2.11: see COMPILATION_GUIDE.md#task-211-tensorrt")
    """  # END PROMPT
