"""Task 2.5: half precision: FP16 on NVIDIA GPUs, BF16 on CPUs that have it, an honest "no" elsewhere.

Guide: QUANTIZATION_GUIDE.md#task-25-half-precision
"""
from __future__ import annotations

import copy
import platform

import torch
from torch import nn

from ..hardware import cpu_flags
from ..types import PrecisionNotSupported, PrecisionSupport

__all__ = ["HALF_DTYPES", "HalfPrecisionModel", "precision_support", "to_half_precision"]

#: The half-precision types this task handles.
HALF_DTYPES = (torch.float16, torch.bfloat16)


# ---------------------------------------------------------------------------------------------------
# Helper (written in full): float32 in, float32 out, half precision inside
# ---------------------------------------------------------------------------------------------------
class HalfPrecisionModel(nn.Module):
    """Wraps a model already converted to ``dtype`` on ``device``: casts each input to it (and to
    channels-last for 4-D inputs when asked) and returns float32 logits on ``device``."""

    def __init__(self, model: nn.Module, *, dtype: torch.dtype, device: str, channels_last: bool) -> None:
        super().__init__()
        self.model, self.dtype, self.device, self.channels_last = model, dtype, str(device), channels_last

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """float32 ``x`` (any device) -> float32 outputs on ``device``, computed in ``dtype``."""
        x = x.to(device=self.device, dtype=self.dtype)
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.model(x).float()


# ---------------------------------------------------------------------------------------------------
# ## Task 2.5: half precision
# ---------------------------------------------------------------------------------------------------
def precision_support(device: str, dtype: torch.dtype) -> PrecisionSupport:
    """Does ``device`` run ``dtype`` natively (fast), rather than emulating it or not at all?

    Args:
        device: "cpu", "cuda" or "cuda:N".
        dtype: ``torch.float16`` or ``torch.bfloat16``.

    Returns:
        ``PrecisionSupport(device as given (a str), dtype name ("float16"/"bfloat16"), supported,
        reason)``:

        * cpu + bfloat16: x86 flags ``avx512_bf16`` or ``amx_bf16``, or Arm ``bf16`` (``cpu_flags()``);
        * cpu + float16: x86 ``avx512_fp16`` or ``amx_fp16``, or Arm ``asimdhp``;
        * cuda + float16: a GPU is visible (``torch.cuda.is_available()``);
        * cuda + bfloat16: a GPU of compute capability 8.0 or newer
          (``torch.cuda.get_device_capability(device)``: GPU N's own capability for "cuda:N").

        ``reason`` names the flag or capability found, or says what is missing ("this CPU has no
        native bfloat16 (no amx_bf16 / avx512_bf16): PyTorch would emulate it, slower than FP32").

    Raises:
        ValueError: another dtype, or a device that is neither "cpu" nor "cuda[:N]".

    Tolerance the grader applies (p2.quantization.bf16_cpu): your answers for this machine's CPU (and GPU, or
    its absence) must equal the grader's own detection.

    Guide: QUANTIZATION_GUIDE.md#task-25-half-precision
    """
    # Step 1: validate dtype (HALF_DTYPES) and device; the dtype's short name.
    # Step 2: CPU: look for the ISA flags (x86 and Arm names differ).
    # Step 3: CUDA: a GPU at all, then its compute capability for BF16.
    raise NotImplementedError("Task 2.5: see QUANTIZATION_GUIDE.md#task-25-half-precision")


def to_half_precision(model: nn.Module, dtype: torch.dtype = torch.float16, device: str = "cuda", *,
                      channels_last: bool = True, allow_emulated: bool = False) -> nn.Module:
    """A half-precision copy of ``model`` on ``device``, behind float32 inputs and outputs.

    Args:
        model: a float32 ``nn.Module`` (left unchanged).
        dtype: ``torch.float16`` or ``torch.bfloat16``.
        device: "cuda", "cuda:N" or "cpu".
        channels_last: convert weights and inputs to channels-last (NHWC) memory format, what
            tensor-core and oneDNN convolutions prefer.
        allow_emulated: convert even where ``precision_support`` says no (for experiments).

    Returns:
        ``HalfPrecisionModel`` wrapping a deep copy in eval mode, moved to ``device`` and ``dtype``:
        call it with float32 [B, C, H, W] (on any device), get float32 logits on ``device``.

    Raises:
        PrecisionNotSupported: ``precision_support(device, dtype)`` says no and not ``allow_emulated``
            (its message is the support's ``reason``).

    Tolerance the grader applies: BF16 on a CPU with native BF16, top-1 on the digits test split
    within 1.0 pt of FP32 (p2.quantization.bf16_cpu, full marks 0.3 pt); on an NVIDIA GPU, FP16 within
    1.0 pt (p2.quantization.fp16_accuracy) and >= 1.5x FP32 on ResNet-50 224x224 batch 32 (p2.quantization.fp16_speedup,
    full marks 2.0x).

    Guide: QUANTIZATION_GUIDE.md#task-25-half-precision
    """
    # Step 1: ask precision_support; raise PrecisionNotSupported(reason) unless allowed.
    # Step 2: deep copy, eval, .to(device=..., dtype=...), channels_last if asked; wrap it.
    raise NotImplementedError("Task 2.5: see QUANTIZATION_GUIDE.md#task-25-half-precision")
