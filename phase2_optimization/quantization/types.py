"""Configs and result types shared by the quantization tasks (helpers, written in full).

Every config is a small dataclass validated in ``__post_init__``, named after the library it mirrors
(``QuantSpec`` ~ a torch.ao observer's dtype/qscheme/reduce_range; ``StaticQuantConfig`` ~ the
arguments of ONNX Runtime's ``quantize_static``), so that moving to the real libraries later means
no relearning. The graders build these with keyword arguments: keep the names, defaults and units.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

__all__ = [
    "QUANT_DTYPES", "INT8_FORMATS", "QUANT_FORMATS", "CALIBRATION_METHODS", "FX_OBSERVERS", "VARIANTS",
    "QuantSpec", "StaticQuantConfig", "FxQuantConfig", "PrecisionSupport", "PrecisionNotSupported",
    "TradeoffRow",
]

#: Integer types a ``QuantSpec`` can target.
QUANT_DTYPES = ("int8", "uint8")
#: ONNX Runtime's INT8 formats: (activation type, weight type). U8S8 is ONNX Runtime's CPU default.
INT8_FORMATS = {"U8S8": ("uint8", "int8"), "U8U8": ("uint8", "uint8"), "S8S8": ("int8", "int8")}
#: ONNX graph layouts: QuantizeLinear/DequantizeLinear pairs around float ops, or QLinear* operators.
QUANT_FORMATS = ("QDQ", "QOperator")
#: ONNX Runtime calibration methods (``onnxruntime.quantization.CalibrationMethod``), lower case.
CALIBRATION_METHODS = ("minmax", "percentile", "entropy")
#: Activation observers of Task 2.2 that the FX flow (Task 2.4) can use.
FX_OBSERVERS = ("minmax", "moving_average", "percentile", "mse")
#: Variants of the trade-off study (Task 2.6), in the order rows are produced.
VARIANTS = (
    "fp32_eager", "fp32_onnx", "dynamic_int8",
    "onnx_int8_per_tensor_minmax", "onnx_int8_per_channel_minmax",
    "onnx_int8_per_channel_percentile", "onnx_int8_per_channel_entropy",
    "fx_int8_minmax", "fx_int8_moving_average", "fx_int8_percentile", "fx_int8_mse",
    "bf16_cpu", "fp16_cuda",
)


# ---------------------------------------------------------------------------------------------------
# Task 2.1: what an integer grid looks like
# ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class QuantSpec:
    """One quantization scheme: integer type, symmetric or affine, per tensor or per channel.

    Attributes:
        dtype: "int8" (-128..127) or "uint8" (0..255).
        symmetric: True: the range is centred on 0 (zero point 0 for int8, 128 for uint8, 64 for
            uint8 with ``reduce_range``); False: affine, the zero point maps ``min`` to ``quant_min``.
        per_channel: one scale and zero point per slice along ``axis`` (weights: the output
            channels, axis 0); False: one for the whole tensor.
        axis: the channel axis for ``per_channel`` (>= 0).
        reduce_range: use 7 bits (-64..63 or 0..127): the fix for INT8 kernels that saturate on
            CPUs without VNNI (QUANTIZATION_GUIDE.md, "Key concepts").
    """

    dtype: str = "int8"
    symmetric: bool = True
    per_channel: bool = False
    axis: int = 0
    reduce_range: bool = False

    def __post_init__(self) -> None:
        if self.dtype not in QUANT_DTYPES:
            raise ValueError(f"dtype must be one of {QUANT_DTYPES}, not {self.dtype!r}")
        if not isinstance(self.axis, int) or self.axis < 0:
            raise ValueError(f"axis must be an int >= 0, not {self.axis!r}")
        for name in ("symmetric", "per_channel", "reduce_range"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a bool, not {getattr(self, name)!r}")

    @property
    def quant_min(self) -> int:
        """Smallest integer of the grid: -128 / 0, or -64 / 0 with ``reduce_range``."""
        if self.dtype == "int8":
            return -64 if self.reduce_range else -128
        return 0

    @property
    def quant_max(self) -> int:
        """Largest integer of the grid: 127 / 255, or 63 / 127 with ``reduce_range``."""
        if self.dtype == "int8":
            return 63 if self.reduce_range else 127
        return 127 if self.reduce_range else 255

    @property
    def storage_dtype(self) -> torch.dtype:
        """The plain integer dtype quantized values are stored in: ``torch.int8`` or ``torch.uint8``."""
        return torch.int8 if self.dtype == "int8" else torch.uint8

    @property
    def torch_dtype(self) -> torch.dtype:
        """The matching torch.ao quantized dtype: ``torch.qint8`` or ``torch.quint8``."""
        return torch.qint8 if self.dtype == "int8" else torch.quint8

    @property
    def torch_qscheme(self) -> torch.qscheme:
        """The matching ``torch.per_{tensor,channel}_{symmetric,affine}``."""
        if self.per_channel:
            return torch.per_channel_symmetric if self.symmetric else torch.per_channel_affine
        return torch.per_tensor_symmetric if self.symmetric else torch.per_tensor_affine


# ---------------------------------------------------------------------------------------------------
# Task 2.4: static post-training quantization
# ---------------------------------------------------------------------------------------------------
@dataclass
class StaticQuantConfig:
    """How ``quantize_static_onnx`` quantizes (the arguments of ONNX Runtime's ``quantize_static``).

    Attributes:
        per_channel: one weight scale per output channel (almost always better for convolutions).
        reduce_range: 7-bit weights; None means "decide from the CPU": True where it has no INT8
            dot-product instructions (``cpu_has_int8_dot_product()`` is False), False otherwise.
        int8_format: activation/weight types, a key of ``INT8_FORMATS`` ("U8S8", "U8U8", "S8S8").
        quant_format: "QDQ" (QuantizeLinear/DequantizeLinear pairs, ONNX Runtime fuses them into
            INT8 kernels) or "QOperator" (QLinearConv, QLinearMatMul ...).
        calibrate_method: one of ``CALIBRATION_METHODS``.
        percentile: the percentile the "percentile" method keeps (0 < p <= 100).
        op_types_to_quantize: ONNX op types to quantize, None for ONNX Runtime's default set.
        preprocess: run ``onnxruntime.quantization.quant_pre_process`` (shape inference, graph
            optimisation) on the FP32 model first, as ONNX Runtime recommends.
    """

    per_channel: bool = True
    reduce_range: bool | None = None
    int8_format: str = "U8S8"
    quant_format: str = "QDQ"
    calibrate_method: str = "minmax"
    percentile: float = 99.999
    op_types_to_quantize: tuple[str, ...] | None = None
    preprocess: bool = True

    def __post_init__(self) -> None:
        if self.int8_format not in INT8_FORMATS:
            raise ValueError(f"int8_format must be one of {sorted(INT8_FORMATS)}, not {self.int8_format!r}")
        if self.quant_format not in QUANT_FORMATS:
            raise ValueError(f"quant_format must be one of {QUANT_FORMATS}, not {self.quant_format!r}")
        if self.calibrate_method not in CALIBRATION_METHODS:
            raise ValueError(f"calibrate_method must be one of {CALIBRATION_METHODS}, not {self.calibrate_method!r}")
        if not 0 < float(self.percentile) <= 100:
            raise ValueError(f"percentile must be in (0, 100], not {self.percentile!r}")
        if self.reduce_range not in (None, True, False):
            raise ValueError(f"reduce_range must be None, True or False, not {self.reduce_range!r}")
        if self.op_types_to_quantize is not None:
            self.op_types_to_quantize = tuple(self.op_types_to_quantize)


@dataclass
class FxQuantConfig:
    """How ``quantize_static_fx`` quantizes (PyTorch FX graph mode, x86 backend).

    Attributes:
        observer: the activation observer of Task 2.2, one of ``FX_OBSERVERS``.
        per_channel: weights per output channel (symmetric int8), else per tensor.
        reduce_range: 7-bit activations (0..127); None means "decide from the CPU" as in
            ``StaticQuantConfig`` (PyTorch's own x86 default always reduces).
        backend: the quantized engine, one of ``torch.backends.quantized.supported_engines``
            ("x86" picks FBGEMM or oneDNN by CPU).
        percentile: for observer="percentile".
        averaging_constant: for observer="moving_average" (0 < c <= 1).
        bins: histogram bins for observer="percentile" and "mse".
    """

    observer: str = "minmax"
    per_channel: bool = True
    reduce_range: bool | None = None
    backend: str = "x86"
    percentile: float = 99.99
    averaging_constant: float = 0.01
    bins: int = 2048

    def __post_init__(self) -> None:
        if self.observer not in FX_OBSERVERS:
            raise ValueError(f"observer must be one of {FX_OBSERVERS}, not {self.observer!r}")
        if self.backend not in torch.backends.quantized.supported_engines:
            raise ValueError(f"backend {self.backend!r} is not a quantized engine of this PyTorch "
                             f"({torch.backends.quantized.supported_engines})")
        if not 0 < float(self.percentile) <= 100:
            raise ValueError(f"percentile must be in (0, 100], not {self.percentile!r}")
        if not 0 < float(self.averaging_constant) <= 1:
            raise ValueError(f"averaging_constant must be in (0, 1], not {self.averaging_constant!r}")
        if int(self.bins) < 16:
            raise ValueError(f"bins must be >= 16, not {self.bins!r}")
        if self.reduce_range not in (None, True, False):
            raise ValueError(f"reduce_range must be None, True or False, not {self.reduce_range!r}")


# ---------------------------------------------------------------------------------------------------
# Task 2.5: half precision
# ---------------------------------------------------------------------------------------------------
class PrecisionNotSupported(RuntimeError):
    """A half-precision type this device cannot run natively (the message says why)."""


@dataclass(frozen=True)
class PrecisionSupport:
    """Whether ``device`` runs ``dtype`` natively. ``reason`` always says why (the ISA flag or GPU
    capability found, or the one missing)."""

    device: str
    dtype: str
    supported: bool
    reason: str


# ---------------------------------------------------------------------------------------------------
# Task 2.6: the trade-off study
# ---------------------------------------------------------------------------------------------------
@dataclass
class TradeoffRow:
    """One variant of the model in the accuracy-versus-speed study.

    Attributes:
        variant: a name from ``VARIANTS``.
        runtime: "pytorch" or "onnxruntime".
        precision: "fp32", "int8", "bf16" or "fp16".
        supported: False when this machine cannot run the variant (then accuracy, latency and
            size are None and ``note`` says why).
        accuracy_pct: top-1 on the test split, percent (0..100).
        latency_ms: median latency of one sample (batch 1), milliseconds.
        size_bytes: bytes of ``artifact`` on disk.
        artifact: the saved model (an ONNX file, or a ``torch.save``d state dict).
        predictor: the callable that was measured: float32 [B, C, H, W] -> logits [B, classes].
        note: anything worth knowing (calibration method, why unsupported).
    """

    variant: str
    runtime: str
    precision: str
    supported: bool = True
    accuracy_pct: float | None = None
    latency_ms: float | None = None
    size_bytes: int | None = None
    artifact: Path | None = None
    predictor: Callable[[torch.Tensor], Any] | None = field(default=None, repr=False, compare=False)
    note: str = ""
