# REFERENCE SOLUTION: excluded from the learner release (make release).
"""Phase 2 quantization: the public API the quantization graders call. Fill in every ``NotImplementedError``.

Work through the tasks in order (each builds on the last), reading the matching section of
``phase2_optimization/QUANTIZATION_GUIDE.md`` first:

    Task 2.1  affine.py       compute_qparams, quantize, dequantize, fake_quantize, sqnr_db, relative_error
    Task 2.2  observers.py    MinMaxObserver, MovingAverageMinMaxObserver, PercentileObserver,
                              HistogramMSEObserver
    Task 2.3  dynamic.py      Int8WeightOnlyLinear, Int8DynamicLinear, quantize_linears, torch_dynamic_int8
    Task 2.4  static_onnx.py  TensorCalibrationReader, quantize_static_onnx
              static_fx.py    quantize_static_fx
    Task 2.5  half.py         precision_support, to_half_precision
    Task 2.6  tradeoff.py     build_variant, pareto_front, plot_pareto, run_tradeoff_study

Check one task with ``make grade PHASE=2 TASK=N`` (N = 1..6). ``types.py``, ``hardware.py`` (both beside this folder) and the
helpers marked "written in full" are complete: use them, keep their names.
"""
from .affine import along_axis, compute_qparams, dequantize, fake_quantize, quantize, relative_error, sqnr_db
from .dynamic import (WEIGHT_SPEC, Int8DynamicLinear, Int8WeightOnlyLinear, int_matmul, quantize_linears,
                      torch_dynamic_int8)
from .half import HALF_DTYPES, HalfPrecisionModel, precision_support, to_half_precision
from ..hardware import INT8_DOT_PRODUCT_FLAGS, cpu_flags, cpu_has_int8_dot_product, resolve_reduce_range
from .observers import (HistogramMSEObserver, MinMaxObserver, MovingAverageMinMaxObserver, PercentileObserver,
                        RangeObserver, RunningHistogram, per_channel_view)
from .static_fx import quantize_static_fx, quantized_module_count, state_dict_bytes
from .static_onnx import TensorCalibrationReader, export_fp32_onnx, onnx_quant_summary, quantize_static_onnx
from .tradeoff import (build_variant, median_latency_ms, ort_predictor, pareto_front, plot_pareto,
                       run_tradeoff_study, top1_accuracy, torch_predictor, tradeoff_markdown)
from ..types import (CALIBRATION_METHODS, FX_OBSERVERS, INT8_FORMATS, QUANT_DTYPES, QUANT_FORMATS, VARIANTS,
                    FxQuantConfig, PrecisionNotSupported, PrecisionSupport, QuantSpec, StaticQuantConfig,
                    TradeoffRow)

__all__ = [
    # types and hardware (helpers)
    "QUANT_DTYPES", "INT8_FORMATS", "QUANT_FORMATS", "CALIBRATION_METHODS", "FX_OBSERVERS", "VARIANTS",
    "QuantSpec", "StaticQuantConfig", "FxQuantConfig", "PrecisionSupport", "PrecisionNotSupported", "TradeoffRow",
    "INT8_DOT_PRODUCT_FLAGS", "cpu_flags", "cpu_has_int8_dot_product", "resolve_reduce_range",
    # Task 2.1
    "along_axis", "compute_qparams", "quantize", "dequantize", "fake_quantize", "sqnr_db", "relative_error",
    # Task 2.2
    "per_channel_view", "RunningHistogram", "RangeObserver", "MinMaxObserver", "MovingAverageMinMaxObserver",
    "PercentileObserver", "HistogramMSEObserver",
    # Task 2.3
    "WEIGHT_SPEC", "int_matmul", "Int8WeightOnlyLinear", "Int8DynamicLinear", "quantize_linears",
    "torch_dynamic_int8",
    # Task 2.4
    "export_fp32_onnx", "onnx_quant_summary", "TensorCalibrationReader", "quantize_static_onnx",
    "quantized_module_count", "state_dict_bytes", "quantize_static_fx",
    # Task 2.5
    "HALF_DTYPES", "HalfPrecisionModel", "precision_support", "to_half_precision",
    # Task 2.6
    "torch_predictor", "ort_predictor", "top1_accuracy", "median_latency_ms", "tradeoff_markdown",
    "build_variant", "pareto_front", "plot_pareto", "run_tradeoff_study",
]
