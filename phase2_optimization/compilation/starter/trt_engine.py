"""Task 2.11: TensorRT engines from ONNX in FP32, FP16 and INT8; serialise, reload, run on device buffers.

Written against the TensorRT 10 Python API (``tensorrt`` is imported lazily: it is part of the
optional ``gpu`` extra and needs an NVIDIA GPU). Guide: COMPILATION_GUIDE.md#task-211-tensorrt
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..types import TRTConfig

__all__ = ["tensorrt_available", "TRTBatchReader", "TRTRunner", "make_calibrator", "build_engine",
           "load_engine", "run_engine"]


# ---------------------------------------------------------------------------------------------------
# Helpers (written in full)
# ---------------------------------------------------------------------------------------------------
def tensorrt_available() -> tuple[bool, str]:
    """``(True, "tensorrt 10.x")`` when TensorRT imports and a CUDA GPU is visible, else ``(False, reason)``."""
    try:
        import tensorrt
    except Exception as e:  # ImportError, or a broken install that fails on import
        return False, f"tensorrt is not installed ({type(e).__name__}: {str(e)[:120]}); pip install '.[gpu]'"
    if not torch.cuda.is_available():
        return False, "needs an NVIDIA GPU (torch.cuda.is_available() is False)"
    return True, f"tensorrt {tensorrt.__version__}"


class TRTBatchReader:
    """Calibration batches, read like ONNX Runtime's ``CalibrationDataReader``.

    ``get_next()`` returns ``{input_name: float32 array [batch_size, C, H, W]}`` or None when the
    data (or ``max_batches``) is used up; ``rewind()`` starts again. Only full batches are given:
    a calibrator feeds the engine one fixed batch shape.

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
    """A deserialised engine and its execution context: ``runner(x_cuda) -> logits_cuda``.

    Attributes:
        engine: the ``tensorrt.ICudaEngine``; context: its ``IExecutionContext``; runtime: the
            ``tensorrt.Runtime`` that deserialised it (kept alive as long as the engine).
        input_name, output_name: the engine's I/O tensor names.
    """

    engine: Any
    context: Any
    runtime: Any
    input_name: str
    output_name: str

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return run_engine(self, x)


def _trt_logger():
    import tensorrt as trt

    global _LOGGER
    if _LOGGER is None:
        _LOGGER = trt.Logger(trt.Logger.WARNING)
    return _LOGGER


_LOGGER = None


# ---------------------------------------------------------------------------------------------------
# ## Task 2.11: TensorRT
# ---------------------------------------------------------------------------------------------------
def make_calibrator(reader: TRTBatchReader, *, cache_path: str | os.PathLike | None = None):
    """An INT8 entropy calibrator that feeds TensorRT the reader's batches from GPU memory.

    Args:
        reader: gives ``{input_name: float32 [batch, C, H, W]}`` batches through ``get_next()``
            (None at the end) and has ``batch_size``.
        cache_path: a calibration-table file: read if it exists (calibration is skipped), written
            after calibrating; None = no cache.

    Returns:
        An instance of a subclass of ``tensorrt.IInt8EntropyCalibrator2`` (its ``__init__`` must call
        the base ``__init__``) implementing ``get_batch_size()``, ``get_batch(names)`` (copies the
        next batch to a CUDA tensor it keeps alive, returns ``[int(tensor.data_ptr())]`` per name,
        or None at the end), ``read_calibration_cache()`` and ``write_calibration_cache(cache)``.

    Tolerance the grader applies: p2.compilation.trt_int8_accuracy (through ``build_engine``).

    Guide: COMPILATION_GUIDE.md#task-211-tensorrt
    """
    # Step 1: import tensorrt as trt; define a class EntropyCalibrator(trt.IInt8EntropyCalibrator2) whose
    #   __init__ calls trt.IInt8EntropyCalibrator2.__init__(self) first.
    # Step 2: get_batch_size() -> reader.batch_size.
    # Step 3: get_batch(names): feed = reader.get_next(); None -> return None. Copy each array to a CUDA tensor
    #   (torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).cuda()), keep the tensors on self (TensorRT
    #   reads them after get_batch returns), return [int(t.data_ptr()) for t in tensors].
    # Step 4: read_calibration_cache() -> the cache file's bytes if it exists, else None;
    #   write_calibration_cache(cache) -> write bytes(cache) when cache_path is set. Return an instance.
    raise NotImplementedError("Task 2.11: see COMPILATION_GUIDE.md#task-211-tensorrt")


def build_engine(onnx_path: str | os.PathLike, config: TRTConfig | None = None,
                 calibration_reader: TRTBatchReader | None = None) -> bytes:
    """Build a serialised TensorRT engine from an ONNX file.

    Args:
        onnx_path: an ONNX file whose input has a dynamic batch dimension (dimension 0).
        config: ``TRTConfig`` (precision, batch profile, workspace, calibration); None = FP16.
        calibration_reader: required for precision "int8" (INT8 with FP16 fallback); at most
            ``config.calibration_batches`` batches are used; the calibration profile is fixed at
            the reader's batch size.

    Returns:
        The serialised engine (``bytes`` of ``builder.build_serialized_network``). One optimization
        profile covers batch ``min_batch..max_batch`` (tuned for ``opt_batch``); "fp32" clears the
        TF32 flag so results match PyTorch FP32; "fp16" sets FP16; "int8" sets INT8 and FP16.

    Raises:
        RuntimeError: the ONNX parser reports errors (the message lists them) or the build fails.
        ValueError: "int8" without a calibration reader.

    Tolerance the grader applies: p2.compilation.trt_fp32_equivalent (max |engine - eager| <= 1e-3, full 1e-4,
    top-1 agreement 100 %); p2.compilation.trt_fp16_speedup (>= 2x over PyTorch FP32 on the GPU, full 5x, with
    top-1 within 1 point on the digits); p2.compilation.trt_int8_accuracy (top-1 drop <= 1.0 point, full 0.5,
    engine at most 0.6x the FP32 engine's size).

    Guide: COMPILATION_GUIDE.md#task-211-tensorrt
    """
    # Step 1: config = config or TRTConfig(); "int8" without calibration_reader -> ValueError.
    # Step 2: builder = trt.Builder(_trt_logger()); network = builder.create_network(0) (TensorRT 10: explicit
    #   batch only; TensorRT 8 needs 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH));
    #   parser = trt.OnnxParser(network, logger); parser.parse_from_file(str(onnx_path)) or RuntimeError with
    #   parser.get_error(i) for i in range(parser.num_errors).
    # Step 3: cfg = builder.create_builder_config(); cfg.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE,
    #   workspace_mb << 20); profile = builder.create_optimization_profile(); profile.set_shape(input name,
    #   (min_batch, C, H, W), (opt_batch, ...), (max_batch, ...)); cfg.add_optimization_profile(profile).
    # Step 4: precision: "fp32" -> cfg.clear_flag(trt.BuilderFlag.TF32); "fp16" -> set_flag(FP16);
    #   "int8" -> set_flag(INT8) and set_flag(FP16), a calibration profile fixed at the reader's batch
    #   (cfg.set_calibration_profile), cfg.int8_calibrator = make_calibrator(reader, cache_path=...), and at
    #   most config.calibration_batches batches.
    # Step 5: serialized = builder.build_serialized_network(network, cfg); None -> RuntimeError; return bytes(serialized).
    raise NotImplementedError("Task 2.11: see COMPILATION_GUIDE.md#task-211-tensorrt")


def load_engine(engine: bytes | str | os.PathLike) -> TRTRunner:
    """Deserialise an engine (bytes, or the path of a file holding them) and make it runnable.

    Args:
        engine: what ``build_engine`` returned, or a file it was written to.

    Returns:
        A ``TRTRunner`` with the ``ICudaEngine`` from ``trt.Runtime.deserialize_cuda_engine``, one
        execution context (``engine.create_execution_context()``), the runtime, and the input and
        output tensor names (``engine.get_tensor_name(i)`` for ``i < engine.num_io_tensors``, sorted
        by ``engine.get_tensor_mode(name)``).

    Raises:
        RuntimeError: the bytes are not an engine for this TensorRT version and GPU.

    Tolerance the grader applies: p2.compilation.trt_fp32_equivalent reloads your engine from a file with this.

    Guide: COMPILATION_GUIDE.md#task-211-tensorrt
    """
    # Step 1: data = the bytes, or Path(engine).read_bytes() for a path.
    # Step 2: runtime = trt.Runtime(_trt_logger()); eng = runtime.deserialize_cuda_engine(data); None -> RuntimeError.
    # Step 3: names = [eng.get_tensor_name(i) for i in range(eng.num_io_tensors)]; split them by
    #   eng.get_tensor_mode(name) == trt.TensorIOMode.INPUT / OUTPUT.
    # Step 4: return TRTRunner(engine=eng, context=eng.create_execution_context(), runtime=runtime,
    #   input_name=..., output_name=...).
    raise NotImplementedError("Task 2.11: see COMPILATION_GUIDE.md#task-211-tensorrt")


def run_engine(runner: TRTRunner, x: torch.Tensor) -> torch.Tensor:
    """Run one batch through the engine with torch CUDA tensors as its device buffers.

    Args:
        runner: from ``load_engine``.
        x: float32 ``[B, C, H, W]`` (moved to the current CUDA device, the one the engine was
            deserialised on, and made contiguous if it is not), with B in the engine's profile range.

    Returns:
        The output as a new CUDA tensor ``[B, classes]`` (the engine's output dtype, float32 for an
        FP32-output ONNX model). The work is queued on torch's current CUDA stream
        (``context.set_input_shape``, ``set_tensor_address`` for input and output,
        ``execute_async_v3(stream)``): synchronise before reading the time.

    Raises:
        RuntimeError: ``execute_async_v3`` reports failure.

    Tolerance the grader applies: every TensorRT criterion calls your engine through this.

    Guide: COMPILATION_GUIDE.md#task-211-tensorrt
    """
    # Step 1: x = x.to(device="cuda", dtype=torch.float32).contiguous()          # [B, C, H, W]
    # Step 2: ctx.set_input_shape(input_name, tuple(x.shape)); out shape = tuple(ctx.get_tensor_shape(output_name));
    #   out = torch.empty(shape, dtype=<torch dtype of engine.get_tensor_dtype(output_name)>, device=x.device).
    # Step 3: ctx.set_tensor_address(name, int(tensor.data_ptr())) for the input and the output.
    # Step 4: ctx.execute_async_v3(torch.cuda.current_stream(x.device).cuda_stream) (False -> RuntimeError);
    #   return out without synchronising.
    raise NotImplementedError("Task 2.11: see COMPILATION_GUIDE.md#task-211-tensorrt")
