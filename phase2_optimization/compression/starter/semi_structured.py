"""Task 2.14: 2:4 semi-structured sparsity: in every group of four weights, two are zero; NVIDIA's sparse
tensor cores (compute capability 8.0+) skip them, which unstructured zeros never achieve.

The mask and the pruning run anywhere; the sparse kernels need an NVIDIA GPU.

Guide: COMPRESSION_GUIDE.md#task-214-24-semi-structured-sparsity
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from ..types import SemiStructuredNotSupported

__all__ = ["SEMI_STRUCTURED_TILE", "eligible_for_two_four", "semi_structured_support", "two_four_mask",
           "apply_two_four", "to_semi_structured"]

#: (rows, columns) a float16 weight must be a multiple of for ``to_sparse_semi_structured`` (CUTLASS and
#: cuSPARSELt kernels); smaller layers stay dense.
SEMI_STRUCTURED_TILE = (32, 64)


# ---------------------------------------------------------------------------------------------------
# Helpers (written in full)
# ---------------------------------------------------------------------------------------------------
def eligible_for_two_four(module: nn.Module) -> bool:
    """An ``nn.Linear`` whose weight [out, in] tiles by ``SEMI_STRUCTURED_TILE``."""
    rows, cols = SEMI_STRUCTURED_TILE
    return isinstance(module, nn.Linear) and module.out_features % rows == 0 and module.in_features % cols == 0


def semi_structured_support(device: str = "cuda") -> tuple[bool, str]:
    """Can ``device`` run 2:4 sparse matrix products? ``(answer, reason)``."""
    if not str(device).startswith("cuda"):
        return False, f"2:4 sparse kernels run on NVIDIA GPUs only, not on {device!r}"
    if not torch.cuda.is_available():
        return False, "no NVIDIA GPU visible (torch.cuda.is_available() is False)"
    major, minor = torch.cuda.get_device_capability(torch.device(device))
    if major < 8:
        return False, f"2:4 sparse tensor cores need compute capability 8.0+, this GPU is {major}.{minor}"
    return True, f"GPU compute capability {major}.{minor}"


# ---------------------------------------------------------------------------------------------------
# ## Task 2.14: 2:4 semi-structured sparsity
# ---------------------------------------------------------------------------------------------------
def two_four_mask(weight: torch.Tensor) -> torch.Tensor:
    """The 2:4 magnitude mask of a weight matrix.

    Args:
        weight: [out, in] with ``in % 4 == 0`` (any float dtype, any device).

    Returns:
        bool [out, in]: in every group of four consecutive weights of a row (columns 4g..4g+3), True at the
        two of largest |w|, False at the other two. Exactly half of the mask is True.

    Raises:
        ValueError: not 2-D, or ``in`` not a multiple of 4.

    Tolerance the grader applies (p2.compression.two_four_pattern): your mask equals its own, exactly, on
    random weights (no ties).

    Guide: COMPRESSION_GUIDE.md#task-214-24-semi-structured-sparsity
    """
    # Step 1: validate the shape.
    # Step 2: view |w| as [out * in / 4, 4], take the top-2 indices of each group, scatter True there.
    # Step 3: back to [out, in].
    raise NotImplementedError("Task 2.14: see COMPRESSION_GUIDE.md#task-214-24-semi-structured-sparsity")


def apply_two_four(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose eligible Linear layers (``eligible_for_two_four``) follow the 2:4 pattern.

    Args:
        model: any ``nn.Module`` (left unchanged).

    Returns:
        A deep copy; in each eligible ``nn.Linear``, ``weight`` multiplied by ``two_four_mask(weight)`` (the
        pruning is permanent, the tensor stays dense); every other parameter unchanged.

    Guide: COMPRESSION_GUIDE.md#task-214-24-semi-structured-sparsity
    """
    # Step 1: deep copy; for each eligible Linear, weight *= two_four_mask(weight) under no_grad.
    raise NotImplementedError("Task 2.14: see COMPRESSION_GUIDE.md#task-214-24-semi-structured-sparsity")


def to_semi_structured(model: nn.Module, device: str = "cuda", dtype: torch.dtype = torch.float16) -> nn.Module:
    """A copy of ``model`` on the GPU whose eligible Linear weights are 2:4 sparse tensors.

    Args:
        model: float32 model (left unchanged).
        device: "cuda" or "cuda:N".
        dtype: ``torch.float16`` or ``torch.bfloat16``.

    Returns:
        ``apply_two_four(model)`` moved to ``device`` and ``dtype`` in eval mode, each eligible Linear's
        ``weight`` replaced by ``nn.Parameter(torch.sparse.to_sparse_semi_structured(weight))`` (the kernel
        then stores half the values plus 2-bit indices). Call it with inputs of that dtype on that device.

    Raises:
        SemiStructuredNotSupported: ``semi_structured_support(device)`` says no (the message is its reason).

    Tolerance the grader applies (p2.compression.semi_structured_speedup, GPU only): outputs within 30 dB SQNR
    of the grader's dense FP16 copy of the same 2:4-pruned weights, and faster than it.

    Guide: COMPRESSION_GUIDE.md#task-214-24-semi-structured-sparsity
    """
    # Step 1: ask semi_structured_support; raise SemiStructuredNotSupported(reason) when it says no.
    # Step 2: apply_two_four, .to(device, dtype), eval().
    # Step 3: each eligible Linear: weight = nn.Parameter(to_sparse_semi_structured(weight), requires_grad=False).
    raise NotImplementedError("Task 2.14: see COMPRESSION_GUIDE.md#task-214-24-semi-structured-sparsity")
