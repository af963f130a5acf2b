# REFERENCE SOLUTION: excluded from the learner release (make release).
"""Task 2.1: affine quantization from first principles: scale, zero point, round trip, error.

``q = clamp(round(x / scale) + zero_point, quant_min, quant_max)`` and ``x ~ (q - zero_point) * scale``.
Everything later in the phase (observers, INT8 layers, static quantization) is built on these few
lines. Guide: QUANTIZATION_GUIDE.md#task-21-affine-quantization-math
"""
from __future__ import annotations

import math

import torch

from ..types import QuantSpec

__all__ = ["compute_qparams", "quantize", "dequantize", "fake_quantize", "sqnr_db", "relative_error"]


# ---------------------------------------------------------------------------------------------------
# Helper (written in full): line a per-channel parameter up with the tensor it applies to
# ---------------------------------------------------------------------------------------------------
def along_axis(param: torch.Tensor | float, x: torch.Tensor, spec: QuantSpec) -> torch.Tensor:
    """``param`` shaped to broadcast against ``x``: [C] -> [1, .., C, .., 1] on ``spec.axis`` when
    ``spec.per_channel``; a scalar (or one-element tensor) stays a 0-d tensor otherwise."""
    p = torch.as_tensor(param, device=x.device)
    if not spec.per_channel:
        return p.reshape(())
    shape = [1] * x.dim()
    shape[spec.axis] = -1
    return p.reshape(shape)


# ---------------------------------------------------------------------------------------------------
# ## Task 2.1: affine quantization math
# ---------------------------------------------------------------------------------------------------
def compute_qparams(min_val: torch.Tensor | float, max_val: torch.Tensor | float,
                    spec: QuantSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale and zero point that map the range [min_val, max_val] onto ``spec``'s integer grid.

    PyTorch's observer convention (``torch.ao.quantization.observer``), exactly:

    * the range is first widened to contain 0: ``min_neg = min(min_val, 0)``, ``max_pos = max(max_val, 0)``
      (0.0 must be exactly representable: zero padding and ReLU outputs are everywhere);
    * symmetric: ``scale = max(-min_neg, max_pos) / ((quant_max - quant_min) / 2)``; zero point 0 for
      int8, ``(quant_min + quant_max + 1) // 2`` for uint8 (128, or 64 with reduce_range);
    * affine: ``scale = (max_pos - min_neg) / (quant_max - quant_min)``,
      ``zero_point = clamp(quant_min - round(min_neg / scale), quant_min, quant_max)``;
    * in both, ``scale = max(scale, torch.finfo(torch.float32).eps)`` (an all-zero tensor still
      gets a usable scale), computed in float32; ``round`` is round-half-to-even (``torch.round``).

    Args:
        min_val, max_val: the observed range; floats or 0-d tensors (per tensor), or float tensors
            [C] (per channel, one entry per channel), min_val <= max_val elementwise.
        spec: the integer grid (dtype, symmetric, reduce_range; ``quant_min``/``quant_max``).

    Returns:
        (scale, zero_point): float32 and int64 tensors with the shape of ``min_val`` as a tensor
        (0-d per tensor, [C] per channel).

    Tolerance the grader applies (p2.quantization.math_exact): zero points equal to PyTorch's
    ``MinMaxObserver`` / ``PerChannelMinMaxObserver`` exactly, scales within 1e-6 relative, on fresh
    random ranges for every dtype / symmetric / per-channel / reduce_range combination.

    Guide: QUANTIZATION_GUIDE.md#task-21-affine-quantization-math
    """
    # BEGIN SOLUTION
    # Step 1: as float32 tensors; widen the range to contain zero (torch.minimum / torch.maximum with 0).
    lo = torch.as_tensor(min_val, dtype=torch.float32)
    hi = torch.as_tensor(max_val, dtype=torch.float32)
    min_neg = torch.minimum(lo, torch.zeros_like(lo))
    max_pos = torch.maximum(hi, torch.zeros_like(hi))
    qmin, qmax = spec.quant_min, spec.quant_max
    eps = torch.tensor(torch.finfo(torch.float32).eps)
    # Step 2: symmetric: the larger magnitude over half the grid; a fixed zero point.
    if spec.symmetric:
        bound = torch.maximum(-min_neg, max_pos)
        scale = torch.maximum(bound / (float(qmax - qmin) / 2), eps)
        mid = 0 if spec.dtype == "int8" else (qmin + qmax + 1) // 2
        zero_point = torch.full(lo.shape, mid, dtype=torch.int64)
        return scale, zero_point
    # Step 3: affine: the whole range over the whole grid; the zero point puts min_neg on quant_min.
    scale = torch.maximum((max_pos - min_neg) / float(qmax - qmin), eps)
    zero_point = qmin - torch.round(min_neg / scale).to(torch.int64)
    return scale, torch.clamp(zero_point, qmin, qmax)
    # END SOLUTION
    """ # BEGIN PROMPT
    # Step 1: as float32 tensors; widen the range to contain zero (torch.minimum / torch.maximum with 0).
    # Step 2: symmetric: the larger magnitude over half the grid; a fixed zero point.
    # Step 3: affine: the whole range over the whole grid; the zero point puts min_neg on quant_min.
    raise NotImplementedError("Task 2.1: see QUANTIZATION_GUIDE.md#task-21-affine-quantization-math")
    """  # END PROMPT


def quantize(x: torch.Tensor, scale: torch.Tensor | float, zero_point: torch.Tensor | int,
             spec: QuantSpec) -> torch.Tensor:
    """Map a float tensor onto the integer grid: ``clamp(round(x / scale) + zero_point, qmin, qmax)``.

    Args:
        x: float tensor, any shape (float32; other float dtypes are converted).
        scale, zero_point: from ``compute_qparams``; scalars / 0-d tensors, or [C] tensors when
            ``spec.per_channel`` (broadcast along ``spec.axis``: see ``along_axis``).
        spec: the integer grid.

    Returns:
        Integer tensor with ``x``'s shape and dtype ``spec.storage_dtype`` (torch.int8 or torch.uint8):
        plain integers, not a torch quantized tensor.

    Compute ``x * (1 / scale)`` in float32 and round half to even (``torch.round``), as PyTorch's
    kernels do. Tolerance the grader applies (p2.quantization.math_exact): every value equal to
    ``torch.quantize_per_tensor`` / ``torch.quantize_per_channel`` (clamped to the reduced range
    where ``reduce_range``); a difference of 1 is forgiven only where ``x / scale`` lies within 1e-4
    of a rounding tie.

    Guide: QUANTIZATION_GUIDE.md#task-21-affine-quantization-math
    """
    # BEGIN SOLUTION
    # Step 1: line scale and zero point up with x (along_axis), scale as float32, zero point as int64.
    x = x.float()
    s = along_axis(scale, x, spec).float()
    z = along_axis(zero_point, x, spec).to(torch.int64)
    # Step 2: multiply by the inverse scale, round half to even, add the zero point, clamp, store.
    q = torch.round(x * (1.0 / s)).to(torch.int64) + z
    return torch.clamp(q, spec.quant_min, spec.quant_max).to(spec.storage_dtype)
    # END SOLUTION
    """ # BEGIN PROMPT
    # Step 1: line scale and zero point up with x (along_axis), scale as float32, zero point as int64.
    # Step 2: multiply by the inverse scale, round half to even, add the zero point, clamp, store.
    raise NotImplementedError("Task 2.1: see QUANTIZATION_GUIDE.md#task-21-affine-quantization-math")
    """  # END PROMPT


def dequantize(q: torch.Tensor, scale: torch.Tensor | float, zero_point: torch.Tensor | int,
               spec: QuantSpec) -> torch.Tensor:
    """Back to floats: ``(q - zero_point) * scale``.

    Args:
        q: integer tensor from ``quantize`` (int8 or uint8).
        scale, zero_point: as for ``quantize``.
        spec: the integer grid (``axis`` for per-channel parameters).

    Returns:
        float32 tensor with ``q``'s shape.

    Tolerance the grader applies (p2.quantization.math_exact): within 1e-6 relative of PyTorch's
    ``dequantize()`` of the same integers.

    Guide: QUANTIZATION_GUIDE.md#task-21-affine-quantization-math
    """
    # BEGIN SOLUTION
    # Step 1: subtract the zero point in integers (int32: uint8 - 128 must not wrap around), then scale.
    s = along_axis(scale, q, spec).float()
    z = along_axis(zero_point, q, spec).to(torch.int32)
    return (q.to(torch.int32) - z).float() * s
    # END SOLUTION
    """ # BEGIN PROMPT
    # Step 1: subtract the zero point in integers (int32: uint8 - 128 must not wrap around), then scale.
    raise NotImplementedError("Task 2.1: see QUANTIZATION_GUIDE.md#task-21-affine-quantization-math")
    """  # END PROMPT


def fake_quantize(x: torch.Tensor, scale: torch.Tensor | float, zero_point: torch.Tensor | int,
                  spec: QuantSpec) -> torch.Tensor:
    """Quantize then dequantize: the float values an INT8 model really computes with.

    Args:
        x: float tensor, any shape.
        scale, zero_point, spec: as for ``quantize``.

    Returns:
        float32 tensor with ``x``'s shape: ``dequantize(quantize(x))``.

    Tolerance the grader applies (p2.quantization.math_exact): equal to ``torch.fake_quantize_per_tensor_affine``
    / ``torch.fake_quantize_per_channel_affine`` except at rounding ties (see ``quantize``); and
    (p2.quantization.sqnr) per-channel int8 weights keep an SQNR of at least 38 dB (full marks 41 dB).

    Guide: QUANTIZATION_GUIDE.md#task-21-affine-quantization-math
    """
    # BEGIN SOLUTION
    # Step 1: compose the two functions above.
    return dequantize(quantize(x, scale, zero_point, spec), scale, zero_point, spec)
    # END SOLUTION
    """ # BEGIN PROMPT
    # Step 1: compose the two functions above.
    raise NotImplementedError("Task 2.1: see QUANTIZATION_GUIDE.md#task-21-affine-quantization-math")
    """  # END PROMPT


def sqnr_db(reference: torch.Tensor, approx: torch.Tensor) -> float:
    """Signal-to-quantization-noise ratio, ``10 * log10(sum(ref^2) / sum((ref - approx)^2))``, in dB.

    Args:
        reference: the exact values (float tensor).
        approx: the quantized approximation, same shape.

    Returns:
        SQNR in dB as a Python float; ``inf`` when ``approx`` equals ``reference`` (no noise at all),
        ``-inf`` when ``reference`` is all zeros and ``approx`` is not (no signal). Each 6 dB is about
        one bit: int8 per-tensor on Gaussian data gives about 40 dB.

    Tolerance the grader applies (p2.quantization.sqnr): within 0.01 dB of the grader's own, computed in float64.

    Guide: QUANTIZATION_GUIDE.md#task-21-affine-quantization-math
    """
    # BEGIN SOLUTION
    # Step 1: float64 sums; a zero noise power means "no error at all": return math.inf.
    ref = reference.detach().double()
    noise = ((ref - approx.detach().double()) ** 2).sum().item()
    signal = (ref ** 2).sum().item()
    if noise == 0:
        return math.inf
    return 10.0 * math.log10(signal / noise) if signal > 0 else -math.inf
    # END SOLUTION
    """ # BEGIN PROMPT
    # Step 1: float64 sums; a zero noise power means "no error at all": return math.inf; a zero signal
    #   power with some noise: return -math.inf.
    raise NotImplementedError("Task 2.1: see QUANTIZATION_GUIDE.md#task-21-affine-quantization-math")
    """  # END PROMPT


def relative_error(reference: torch.Tensor, approx: torch.Tensor) -> float:
    """``||reference - approx||_2 / ||reference||_2`` (Frobenius norms), a Python float.

    Args:
        reference, approx: float tensors of the same shape.

    Returns:
        The relative error (0 = exact); ``0.0`` if both are all zeros, ``inf`` if ``reference`` is all
        zeros and ``approx`` is not.

    Tolerance the grader applies (p2.quantization.sqnr): within 1e-6 (relative) of the grader's own.

    Guide: QUANTIZATION_GUIDE.md#task-21-affine-quantization-math
    """
    # BEGIN SOLUTION
    # Step 1: float64 norms (torch.linalg.vector_norm of the flattened tensors).
    ref = reference.detach().double()
    diff = torch.linalg.vector_norm(ref - approx.detach().double()).item()
    norm = torch.linalg.vector_norm(ref).item()
    if norm == 0:
        return 0.0 if diff == 0 else math.inf
    return diff / norm
    # END SOLUTION
    """ # BEGIN PROMPT
    # Step 1: float64 norms (torch.linalg.vector_norm of the flattened tensors); a zero reference norm
    #   gives 0.0 when the difference is zero too, else math.inf.
    raise NotImplementedError("Task 2.1: see QUANTIZATION_GUIDE.md#task-21-affine-quantization-math")
    """  # END PROMPT
