"""Task 2.3: INT8 Linear layers by hand (weight-only and dynamic), and PyTorch's own dynamic INT8.

Weight-only INT8 stores the weights in 8 bits and dequantizes them for a float matmul (smaller,
not faster in eager PyTorch). Dynamic INT8 also quantizes each incoming batch of activations on
the fly, multiplies in integers and rescales (the scheme of ``torch.ao.quantization.quantize_dynamic``).
Guide: QUANTIZATION_GUIDE.md#task-23-dynamic-and-weight-only-int8
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from .affine import compute_qparams, quantize
from ..types import QuantSpec

__all__ = ["WEIGHT_SPEC", "Int8WeightOnlyLinear", "Int8DynamicLinear", "quantize_linears", "torch_dynamic_int8",
           "int_matmul"]

#: Linear weights: symmetric int8, one scale per output feature (rows of the [out, in] weight).
WEIGHT_SPEC = QuantSpec(dtype="int8", symmetric=True, per_channel=True, axis=0)


# ---------------------------------------------------------------------------------------------------
# Helper (written in full): an integer matmul with int32 accumulation
# ---------------------------------------------------------------------------------------------------
def int_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b`` for int8 ``a`` [M, K] and int8 ``b`` [K, N], accumulated exactly in int32 -> [M, N].

    Uses ``torch._int_mm`` (a real INT8 GEMM) where this PyTorch has it for the device, else an
    int32 matmul (exact, slower). Either way no float rounding happens before the rescale.
    """
    if hasattr(torch, "_int_mm"):
        try:
            return torch._int_mm(a.contiguous(), b.contiguous())
        except RuntimeError:
            pass
    return a.to(torch.int32) @ b.to(torch.int32)


# ---------------------------------------------------------------------------------------------------
# ## Task 2.3: dynamic and weight-only INT8
# ---------------------------------------------------------------------------------------------------
class Int8WeightOnlyLinear(nn.Module):
    """A Linear layer whose weights are stored as int8 (per output feature, symmetric).

    Buffers: ``weight_int8`` int8 [out, in], ``weight_scale`` float32 [out], ``bias`` float32 [out]
    or None. Nothing float of the weight's size is kept.
    """

    def __init__(self, weight_int8: torch.Tensor, weight_scale: torch.Tensor, bias: torch.Tensor | None) -> None:
        super().__init__()
        self.in_features, self.out_features = weight_int8.shape[1], weight_int8.shape[0]
        self.register_buffer("weight_int8", weight_int8)
        self.register_buffer("weight_scale", weight_scale)
        self.register_buffer("bias", bias)

    @classmethod
    def from_float(cls, linear: nn.Linear) -> "Int8WeightOnlyLinear":
        """Quantize a float ``nn.Linear``'s weight with ``WEIGHT_SPEC`` (symmetric int8 per row).

        Args:
            linear: a float32 ``nn.Linear`` (weight [out, in], optional bias [out]).

        Returns:
            ``Int8WeightOnlyLinear(weight_int8 int8 [out, in], weight_scale float32 [out], bias
            float32 [out] or None)``: min/max of each row -> ``compute_qparams`` -> ``quantize``.

        Tolerance the grader applies (p2.quantization.dynamic_int8): the layer holds an int8 weight of the
        Linear's shape and no float copy of it (its ``torch.save``d state dict is at most 0.3x the
        float layer's), and its output depends on that int8 weight.

        Guide: QUANTIZATION_GUIDE.md#task-23-dynamic-and-weight-only-int8
        """
        # Step 1: per-row range of the weight (amin/amax over dim 1), then compute_qparams(.., WEIGHT_SPEC).
        # Step 2: quantize(w, scale, zero_point, WEIGHT_SPEC); keep a detached float copy of the bias.
        raise NotImplementedError("Task 2.3: see QUANTIZATION_GUIDE.md#task-23-dynamic-and-weight-only-int8")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x @ W.T + bias`` with ``W = weight_int8 * weight_scale[:, None]`` rebuilt on each call.

        Args:
            x: float32 [..., in_features].

        Returns:
            float32 [..., out_features].

        Tolerance the grader applies (p2.quantization.dynamic_int8): SQNR against the float layer's output of
        at least 28 dB (full marks 31.5 dB) on a fresh random input.

        Guide: QUANTIZATION_GUIDE.md#task-23-dynamic-and-weight-only-int8
        """
        # Step 1: dequantize the weight (int8 -> float32, times the per-row scale) and call F.linear.
        raise NotImplementedError("Task 2.3: see QUANTIZATION_GUIDE.md#task-23-dynamic-and-weight-only-int8")


class Int8DynamicLinear(Int8WeightOnlyLinear):
    """INT8 weights and, on every call, INT8 activations: an integer matmul, then one rescale.

    Same buffers as ``Int8WeightOnlyLinear``; ``from_float`` is inherited.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Quantize ``x`` on the fly (symmetric int8), multiply in integers, rescale, add the bias.

        Args:
            x: float32 [..., in_features].

        Returns:
            float32 [..., out_features]: ``int_matmul(q_x, weight_int8.T) * (x_scale * weight_scale)
            + bias``, where ``x_scale``/``q_x`` come from the symmetric int8 range of this very
            batch (per tensor; per row is also accepted).

        Tolerance the grader applies (p2.quantization.dynamic_int8): SQNR against the float layer's output of
        at least 28 dB (full marks 31.5 dB), and its output depends on ``weight_int8``.

        Guide: QUANTIZATION_GUIDE.md#task-23-dynamic-and-weight-only-int8
        """
        # Step 1: flatten to [M, in]; the batch's symmetric int8 qparams (compute_qparams on its
        #   min and max, QuantSpec("int8", symmetric=True)); quantize it.
        # Step 2: int_matmul(q_x, weight_int8.T) -> int32 [M, out]; to float, times
        #   x_scale * weight_scale (broadcast over rows), plus the bias; reshape to [..., out].
        raise NotImplementedError("Task 2.3: see QUANTIZATION_GUIDE.md#task-23-dynamic-and-weight-only-int8")


def quantize_linears(model: nn.Module, mode: str = "dynamic") -> nn.Module:
    """A copy of ``model`` with every ``nn.Linear`` replaced by its INT8 version.

    Args:
        model: any float32 ``nn.Module`` (left unchanged).
        mode: "dynamic" (``Int8DynamicLinear``) or "weight_only" (``Int8WeightOnlyLinear``).

    Returns:
        A deep copy in eval mode in which no ``nn.Linear`` is left (nested modules included).

    Raises:
        ValueError: an unknown ``mode``.

    Tolerance the grader applies (p2.quantization.dynamic_int8): on a grader MLP, every Linear replaced, the
    ``torch.save``d state dict at most 0.3x the float one, output SQNR >= 28 dB (full marks 31.5 dB).

    Guide: QUANTIZATION_GUIDE.md#task-23-dynamic-and-weight-only-int8
    """
    # Step 1: pick the class from mode (ValueError otherwise); deep-copy the model, in eval mode.
    # Step 2: walk modules() and each one's named_children(); for each nn.Linear child,
    #   setattr(parent, child_name, cls.from_float(child)).
    raise NotImplementedError("Task 2.3: see QUANTIZATION_GUIDE.md#task-23-dynamic-and-weight-only-int8")


def torch_dynamic_int8(model: nn.Module) -> nn.Module:
    """PyTorch's own dynamic INT8 of every ``nn.Linear`` (FBGEMM / oneDNN kernels on x86).

    Args:
        model: a float32 ``nn.Module`` (left unchanged).

    Returns:
        ``torch.ao.quantization.quantize_dynamic`` of a deep copy, eval mode, ``{nn.Linear}``,
        ``dtype=torch.qint8``: its Linear layers are ``torch.ao.nn.quantized.dynamic.Linear``.

    Tolerance the grader applies (p2.quantization.dynamic_speedup): really quantized (dynamic quantized
    Linear modules present, output SQNR >= 25 dB), then at least 1.5x faster than the float model
    on a batch-1 MLP (full marks 2.5x), timed by the grader.

    Guide: QUANTIZATION_GUIDE.md#task-23-dynamic-and-weight-only-int8
    """
    # Step 1: torch.ao.quantization.quantize_dynamic(copy.deepcopy(model).eval(), {nn.Linear}, dtype=torch.qint8).
    raise NotImplementedError("Task 2.3: see QUANTIZATION_GUIDE.md#task-23-dynamic-and-weight-only-int8")
