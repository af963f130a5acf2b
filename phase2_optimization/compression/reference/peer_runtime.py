# REFERENCE SOLUTION: excluded from the learner release (make release).
"""Task 2.16: a vendor runtime as a peer: the same ONNX file through Intel's OpenVINO (FP32, and INT8 quantized
by NNCF) beside ONNX Runtime, one thread each, and where each one spends its time.

Guide: COMPRESSION_GUIDE.md#task-216-a-vendor-runtime-as-a-peer
"""
from __future__ import annotations

import collections
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..types import KernelTime

__all__ = ["compile_openvino", "run_openvino", "quantize_openvino", "kernel_profile", "ort_kernel_profile"]

# NNCF's usage telemetry off (it reads NNCF_CI when imported). OpenVINO's own is off under the grader, which sets
# CI=true, and on your machine after `opt_in_out --opt_out` (COMPRESSION_GUIDE.md, Task 2.16).
os.environ.setdefault("NNCF_CI", "1")


# ---------------------------------------------------------------------------------------------------
# Helpers (written in full)
# ---------------------------------------------------------------------------------------------------
def _numpy(x: torch.Tensor | np.ndarray) -> np.ndarray:
    """``x`` as a contiguous float32 numpy array."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.ascontiguousarray(x, dtype=np.float32)


def run_openvino(compiled: Any, x: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Run a compiled OpenVINO model on ``x`` (float32 [B, C, H, W]); its first output as a float32 tensor."""
    return torch.from_numpy(np.array(compiled(_numpy(x))[0], dtype=np.float32, copy=True))


def _summed(rows: list[tuple[str, str, float]], runs: int) -> list[KernelTime]:
    """Sum (node_type, exec_type, ms) rows over ``runs`` inferences into per-inference KernelTimes, slowest first."""
    calls: collections.Counter = collections.Counter()
    ms: collections.Counter = collections.Counter()
    for node_type, exec_type, t in rows:
        calls[(node_type, exec_type)] += 1
        ms[(node_type, exec_type)] += t
    return sorted((KernelTime(k[0], k[1], round(calls[k] / runs), ms[k] / runs) for k in calls),
                  key=lambda r: -r.ms)


# ---------------------------------------------------------------------------------------------------
# ## Task 2.16: a vendor runtime as a peer
# ---------------------------------------------------------------------------------------------------
def compile_openvino(model: str | Path | Any, threads: int = 1) -> Any:
    """Compile ``model`` for OpenVINO's CPU plugin so that it is an honest peer of a one-thread ONNX Runtime
    session: the same number of threads and the same FP32 arithmetic.

    Args:
        model: an ONNX file (``str`` or ``Path``; OpenVINO reads ONNX directly, no conversion step), or an
            ``openvino.Model`` (what ``quantize_openvino`` returns).
        threads: inference threads (>= 1).

    Returns:
        An ``openvino.CompiledModel`` on "CPU" with ``INFERENCE_NUM_THREADS = threads``, ``NUM_STREAMS = 1``,
        ``PERFORMANCE_HINT = LATENCY``, ``INFERENCE_PRECISION_HINT = f32`` (without it a CPU with AMX or
        AVX-512 BF16 silently computes in bfloat16), CPU pinning off (a shared machine), and ``PERF_COUNT`` on
        (per-node profiling, for ``kernel_profile``).

    Raises:
        ValueError: ``threads`` < 1.

    Tolerance the grader applies (p2.compression.openvino_agree): on the digits ResNet-18's ONNX file, the
    compiled model's properties read back as above, and its logits within 1e-4 (max |difference| over max
    |logit|) of the grader's one-thread ONNX Runtime session.

    Guide: COMPRESSION_GUIDE.md#task-216-a-vendor-runtime-as-a-peer
    """
    # BEGIN SOLUTION
    # Step 1: check threads; an openvino.Core(); read the ONNX file with core.read_model unless given a Model.
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    import openvino as ov
    import openvino.properties as props
    import openvino.properties.hint as hints

    core = ov.Core()
    if isinstance(model, (str, Path)):
        model = core.read_model(str(model))
    # Step 2: the config: threads, one stream, LATENCY, f32 precision, no pinning, profiling on; compile for CPU.
    config = {props.inference_num_threads: threads, props.num_streams: 1,
              hints.performance_mode: hints.PerformanceMode.LATENCY, hints.inference_precision: ov.Type.f32,
              hints.enable_cpu_pinning: False, props.enable_profiling: True}
    return core.compile_model(model, "CPU", config)
    # END SOLUTION
    """ # BEGIN PROMPT
    # Step 1: check threads; an openvino.Core(); read the ONNX file with core.read_model unless given a Model.
    # Step 2: the config: threads, one stream, LATENCY, f32 precision, no pinning, profiling on; compile for CPU.
    raise NotImplementedError("Task 2.16: see COMPRESSION_GUIDE.md#task-216-a-vendor-runtime-as-a-peer")
    """  # END PROMPT


def quantize_openvino(onnx_path: str | Path, calib_x: torch.Tensor | np.ndarray) -> Any:
    """Post-training INT8 quantization of an ONNX model with NNCF, for OpenVINO.

    Args:
        onnx_path: the FP32 ONNX file (batch axis dynamic or 1).
        calib_x: float32 [N, C, H, W] calibration images (the calibration split, never the test split); each is
            fed to the model as a batch of one.

    Returns:
        An ``openvino.Model`` whose convolutions and matmuls are quantized (``FakeQuantize`` nodes on their
        weights and inputs; the CPU plugin runs them as INT8 kernels). Compile it with ``compile_openvino``.

    Uses ``nncf.quantize(model, nncf.Dataset(items, transform), preset=nncf.QuantizationPreset.PERFORMANCE,
    subset_size=N, fast_bias_correction=True)`` on ``openvino.Core().read_model(onnx_path)``; NNCF's log set
    to errors only.

    Tolerance the grader applies (p2.compression.openvino_int8_accuracy): compiled by the grader, top-1 on the
    digits test split within 1 pt of the FP32 model's (0.3 pt for full marks), and really INT8 (FakeQuantize
    nodes before the convolutions).

    Guide: COMPRESSION_GUIDE.md#task-216-a-vendor-runtime-as-a-peer
    """
    # BEGIN SOLUTION
    # Step 1: read the ONNX file with openvino.Core().read_model.
    import logging

    import nncf
    import openvino as ov

    model = ov.Core().read_model(str(onnx_path))
    # Step 2: an nncf.Dataset of single-image float32 batches; nncf.quantize with the PERFORMANCE preset.
    items = [_numpy(calib_x[i:i + 1]) for i in range(len(calib_x))]
    nncf.set_log_level(logging.ERROR)
    return nncf.quantize(model, nncf.Dataset(items), preset=nncf.QuantizationPreset.PERFORMANCE,
                         subset_size=len(items), fast_bias_correction=True)
    # END SOLUTION
    """ # BEGIN PROMPT
    # Step 1: read the ONNX file with openvino.Core().read_model.
    # Step 2: an nncf.Dataset of single-image float32 batches; nncf.quantize with the PERFORMANCE preset.
    raise NotImplementedError("Task 2.16: see COMPRESSION_GUIDE.md#task-216-a-vendor-runtime-as-a-peer")
    """  # END PROMPT


def kernel_profile(compiled: Any, x: torch.Tensor | np.ndarray, runs: int = 5) -> list[KernelTime]:
    """Where a compiled OpenVINO model spends one inference on ``x``, per (node type, kernel).

    Args:
        compiled: an ``openvino.CompiledModel`` compiled with ``PERF_COUNT`` on (``compile_openvino`` does).
        x: float32 [B, C, H, W] input.
        runs: inferences to average over (after three warm-ups).

    Returns:
        ``KernelTime(node_type, exec_type, calls, ms)`` rows, slowest first: ``calls`` nodes per inference and
        ``ms`` their summed ``real_time`` per inference, over the nodes whose status is ``EXECUTED`` only.

    One ``compiled.create_infer_request()``; after each ``request.infer(...)`` its ``get_profiling_info()`` holds
    that inference's nodes (``node_type``, ``exec_type``, ``real_time`` as a ``datetime.timedelta``).

    Tolerance the grader applies (p2.compression.kernel_profile): on the INT8 digits model, the rows' total
    within 0.3-2x of the grader's timing of the same compiled model, convolutions present, and most of their
    time in INT8 kernels (an ``exec_type`` containing "I8").

    Guide: COMPRESSION_GUIDE.md#task-216-a-vendor-runtime-as-a-peer
    """
    # BEGIN SOLUTION
    # Step 1: one infer request; three warm-up inferences (the first ones are slower).
    import openvino as ov

    request = compiled.create_infer_request()
    data = _numpy(x)
    for _ in range(3):
        request.infer({0: data})
    # Step 2: per run: infer, then every EXECUTED node of get_profiling_info() as (node_type, exec_type, ms).
    rows = []
    for _ in range(runs):
        request.infer({0: data})
        rows += [(p.node_type, p.exec_type, p.real_time.total_seconds() * 1e3) for p in request.get_profiling_info()
                 if p.status == ov.ProfilingInfo.Status.EXECUTED]
    # Step 3: sum per (node_type, exec_type), divide by runs, slowest first.
    return _summed(rows, runs)
    # END SOLUTION
    """ # BEGIN PROMPT
    # Step 1: one infer request; three warm-up inferences (the first ones are slower).
    # Step 2: per run: infer, then every EXECUTED node of get_profiling_info() as (node_type, exec_type, ms).
    # Step 3: sum per (node_type, exec_type), divide by runs, slowest first (the helper _summed does it).
    raise NotImplementedError("Task 2.16: see COMPRESSION_GUIDE.md#task-216-a-vendor-runtime-as-a-peer")
    """  # END PROMPT


def ort_kernel_profile(onnx_path: str | Path, x: torch.Tensor | np.ndarray, threads: int = 1,
                       runs: int = 5) -> list[KernelTime]:
    """Where a one-thread ONNX Runtime session spends one inference on ``x``, per (operator, provider).

    Args:
        onnx_path: the ONNX file.
        x: float32 [B, C, H, W] input.
        threads: intra-op threads (inter-op 1, sequential execution).
        runs: inferences to average over (after one warm-up).

    Returns:
        ``KernelTime(node_type=op_name, exec_type=provider, calls, ms)`` rows, slowest first, from the session's
        profile (``SessionOptions.enable_profiling``, a Chrome-trace JSON file; events of category "Node" named
        ``*_kernel_time``, ``dur`` in microseconds), written to a temporary folder and deleted.

    Tolerance the grader applies (p2.compression.kernel_profile): the rows' total within 0.3-2x of the
    grader's timing of its own one-thread session, convolutions present.

    Guide: COMPRESSION_GUIDE.md#task-216-a-vendor-runtime-as-a-peer
    """
    # BEGIN SOLUTION
    # Step 1: SessionOptions: threads, one inter-op thread, sequential, profiling into a temporary folder.
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(tmp) / "ort_profile")
        session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        # Step 2: one warm-up run and `runs` timed runs; end_profiling() gives the JSON file.
        feed = {session.get_inputs()[0].name: _numpy(x)}
        session.run(None, feed)
        for _ in range(runs):
            session.run(None, feed)
        events = json.loads(Path(session.end_profiling()).read_text())
    # Step 3: the "Node" events named *_kernel_time of the timed runs, as (op_name, provider, dur / 1000).
    kernels = [e for e in events if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time")]
    per_run = len(kernels) // (runs + 1)
    rows = [(e["args"]["op_name"], e["args"]["provider"], e["dur"] / 1e3) for e in kernels[per_run:]]
    return _summed(rows, runs)
    # END SOLUTION
    """ # BEGIN PROMPT
    # Step 1: SessionOptions: threads, one inter-op thread, sequential, profiling into a temporary folder.
    # Step 2: one warm-up run and `runs` timed runs; end_profiling() gives the JSON file.
    # Step 3: the "Node" events named *_kernel_time of the timed runs, as (op_name, provider, dur / 1000);
    # _summed does the rest.
    raise NotImplementedError("Task 2.16: see COMPRESSION_GUIDE.md#task-216-a-vendor-runtime-as-a-peer")
    """  # END PROMPT
