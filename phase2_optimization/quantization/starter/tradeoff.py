"""Task 2.6: the accuracy-versus-speed trade-off: every variant measured the same way, one plot.

Guide: QUANTIZATION_GUIDE.md#task-26-accuracy-versus-speed-trade-off
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from .dynamic import torch_dynamic_int8
from .half import to_half_precision
from .static_fx import quantize_static_fx
from .static_onnx import TensorCalibrationReader, export_fp32_onnx, quantize_static_onnx
from ..types import VARIANTS, FxQuantConfig, PrecisionNotSupported, StaticQuantConfig, TradeoffRow

__all__ = ["torch_predictor", "ort_predictor", "top1_accuracy", "median_latency_ms", "tradeoff_markdown",
           "build_variant", "pareto_front", "plot_pareto", "run_tradeoff_study"]

Predict = Callable[[torch.Tensor], torch.Tensor]


# ---------------------------------------------------------------------------------------------------
# Helpers (written in full): one calling convention, one way to measure
# ---------------------------------------------------------------------------------------------------
def torch_predictor(module: nn.Module) -> Predict:
    """``x -> logits`` (float32, on the CPU) for a PyTorch module, under ``torch.inference_mode()``.
    Moving the output to the CPU also waits for a GPU to finish."""

    def predict(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return module(x).float().cpu()

    return predict


def ort_predictor(path: str | Path) -> Predict:
    """``x -> logits`` for an ONNX file on ONNX Runtime's CPU provider, threads pinned like PyTorch's."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = torch.get_num_threads()
    so.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def predict(x: torch.Tensor) -> torch.Tensor:
        feed = {name: np.ascontiguousarray(x.detach().cpu().float().numpy())}
        return torch.from_numpy(session.run(None, feed)[0]).float()

    return predict


def top1_accuracy(predictor: Predict, x: torch.Tensor, y: torch.Tensor, batch_size: int = 64) -> float:
    """Top-1 accuracy of ``predictor`` on (x [N, C, H, W], y [N]), in percent (0..100)."""
    correct = 0
    for i in range(0, len(x), batch_size):
        logits = torch.as_tensor(predictor(x[i:i + batch_size]))
        correct += int((logits.argmax(1).cpu() == y[i:i + batch_size].cpu()).sum())
    return 100.0 * correct / len(x)


def median_latency_ms(predictor: Predict, example: torch.Tensor, *, warmup: int = 5, repeats: int = 30) -> float:
    """Median milliseconds of ``predictor(example)`` after ``warmup`` untimed calls (perf_counter_ns)."""
    for _ in range(warmup):
        predictor(example)
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        predictor(example)
        samples.append((time.perf_counter_ns() - t0) / 1e6)
    return float(np.median(samples))


def tradeoff_markdown(rows: Sequence[TradeoffRow]) -> str:
    """The study as a markdown table (unsupported variants keep their row, with the reason)."""
    lines = ["| variant | runtime | precision | top-1 (%) | latency (ms) | size (MiB) | note |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        if not r.supported:
            lines.append(f"| {r.variant} | {r.runtime} | {r.precision} | - | - | - | not supported: {r.note} |")
            continue
        lines.append(f"| {r.variant} | {r.runtime} | {r.precision} | {r.accuracy_pct:.2f} | {r.latency_ms:.2f} "
                     f"| {r.size_bytes / 2**20:.1f} | {r.note} |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------------
# ## Task 2.6: accuracy versus speed trade-off
# ---------------------------------------------------------------------------------------------------
def build_variant(variant: str, model: nn.Module, calib_x: torch.Tensor, work_dir: str | Path, *,
                  calib_batch: int = 16) -> TradeoffRow:
    """Build one variant of ``model`` with your Tasks 2.3-2.5, save it, and wrap it as a predictor.

    Args:
        variant: a name from ``VARIANTS``: "fp32_eager", "fp32_onnx" (``export_fp32_onnx``),
            "dynamic_int8" (``torch_dynamic_int8``), "onnx_int8_{per_tensor,per_channel}_{minmax,
            percentile,entropy}" (``quantize_static_onnx`` with that config and a
            ``TensorCalibrationReader`` over ``calib_x``), "fx_int8_{minmax,moving_average,percentile,
            mse}" (``quantize_static_fx`` with that observer), "bf16_cpu", "fp16_cuda"
            (``to_half_precision``).
        model: the float32 model (left unchanged).
        calib_x: calibration images [N, C, H, W], used in batches of ``calib_batch`` (a ragged last
            batch is dropped: ONNX Runtime's histogram calibrators stack batches of one shape).
        work_dir: where artifacts go: ONNX files, or ``torch.save``d state dicts (``<variant>.pt``);
            created if missing.
        calib_batch: images per calibration batch (int >= 1).

    Returns:
        A ``TradeoffRow`` with variant, runtime ("pytorch" / "onnxruntime"), precision, artifact and
        predictor (``torch_predictor`` / ``ort_predictor``) set; accuracy, latency and size left None.
        A half-precision variant this machine cannot run gives ``supported=False`` and the reason in
        ``note`` (catch ``PrecisionNotSupported``).

    Raises:
        ValueError: a variant not in ``VARIANTS``, or ``calib_batch < 1``, before anything is built.

    Tolerance the grader applies (p2.quantization.tradeoff): each row's predictor and artifact are re-measured.

    Guide: QUANTIZATION_GUIDE.md#task-26-accuracy-versus-speed-trade-off
    """
    # Step 1: a variant not in VARIANTS, or calib_batch < 1 -> ValueError; work_dir exists (mkdir);
    #   calibration batches = calib_x.split(calib_batch) without a ragged last batch (keep it if it is
    #   the only one); example = calib_x[:1].
    # Step 2: one branch per family of variants (see Args), each returning its TradeoffRow.
    raise NotImplementedError("Task 2.6: see QUANTIZATION_GUIDE.md#task-26-accuracy-versus-speed-trade-off")


def pareto_front(rows: Sequence[TradeoffRow]) -> list[TradeoffRow]:
    """The rows no other row beats on both axes: higher accuracy and lower latency.

    Args:
        rows: ``TradeoffRow``s; unsupported ones (or with accuracy/latency None) are ignored.

    Returns:
        The non-dominated rows, sorted by latency (ascending). Row A dominates B when
        ``A.accuracy_pct >= B.accuracy_pct`` and ``A.latency_ms <= B.latency_ms`` with at least one
        strict; two rows with equal accuracy and latency are both kept.

    Tolerance the grader applies (p2.quantization.tradeoff): exactly the grader's set, on your rows and on
    fresh random rows.

    Guide: QUANTIZATION_GUIDE.md#task-26-accuracy-versus-speed-trade-off
    """
    # Step 1: keep measured rows; Step 2: drop every row some other row dominates; sort by latency.
    raise NotImplementedError("Task 2.6: see QUANTIZATION_GUIDE.md#task-26-accuracy-versus-speed-trade-off")


def plot_pareto(rows: Sequence[TradeoffRow], path: str | Path) -> Path:
    """Scatter accuracy (%) against latency (ms) for every measured row, the Pareto front joined.

    Args:
        rows: the study's rows (unsupported ones are left out of the plot).
        path: the PNG to write (parent folders created).

    Returns:
        ``Path(path)``: a PNG of at least 640x480 pixels, each point labelled with its variant,
        axes labelled with units, the front drawn as a line.

    Tolerance the grader applies (p2.quantization.tradeoff): a valid PNG of at least 640x480 pixels.

    Guide: QUANTIZATION_GUIDE.md#task-26-accuracy-versus-speed-trade-off
    """
    # Step 1: a matplotlib Figure (not pyplot: nothing global, works headless), size 8x6 inches.
    # Step 2: one scatter point per measured row, coloured by precision, labelled with its variant.
    # Step 3: the front as a line, axis labels with units, a title; save and close.
    raise NotImplementedError("Task 2.6: see QUANTIZATION_GUIDE.md#task-26-accuracy-versus-speed-trade-off")


def run_tradeoff_study(model: nn.Module, test_x: torch.Tensor, test_y: torch.Tensor, calib_x: torch.Tensor,
                       out_dir: str | Path, *, variants: Sequence[str] = VARIANTS,
                       repeats: int = 30) -> list[TradeoffRow]:
    """Build and measure every variant; write the table and the Pareto plot.

    Args:
        model: the float32 model (the digits ResNet-18 in the grader and the notebook).
        test_x, test_y: the test split, [N, C, H, W] float32 and [N] int64 (accuracy only).
        calib_x: calibration images [M, C, H, W] (never the test split).
        out_dir: gets ``artifacts/`` (``build_variant``'s work_dir), ``tradeoff.md``
            (``tradeoff_markdown``) and ``pareto.png`` (``plot_pareto``).
        variants: which variants, in this order.
        repeats: timed calls per latency (``median_latency_ms`` on ``test_x[:1]``).

    Returns:
        One ``TradeoffRow`` per variant, in order, measured: ``accuracy_pct`` (``top1_accuracy``),
        ``latency_ms`` (batch 1), ``size_bytes`` (the artifact's size on disk); unsupported rows
        as ``build_variant`` made them.

    Raises:
        ValueError: a name in ``variants`` that is not in ``VARIANTS``, before anything is built.

    Tolerance the grader applies (p2.quantization.tradeoff): the grader runs your study with one thread and
    re-measures each row with its predictor: accuracy within 0.5 pt, latency within a factor of 2
    (re-measured while it disagrees), size equal to the artifact's bytes, static INT8 artifacts at
    most 0.3x their FP32 file; the Pareto front exact; pareto.png a real plot.

    Guide: QUANTIZATION_GUIDE.md#task-26-accuracy-versus-speed-trade-off
    """
    # Step 1: a name in variants not in VARIANTS -> ValueError, before building anything; then for
    #   each variant: build_variant(...) into out_dir / "artifacts".
    # Step 2: measure supported rows: accuracy, latency at batch 1, artifact bytes.
    # Step 3: the table and the plot.
    raise NotImplementedError("Task 2.6: see QUANTIZATION_GUIDE.md#task-26-accuracy-versus-speed-trade-off")
