"""Task 2.12: unstructured magnitude pruning with ``torch.nn.utils.prune``: global or per layer, exact
sparsity reports, and the sparsity/accuracy curve.

Guide: COMPRESSION_GUIDE.md#task-212-unstructured-magnitude-pruning
"""
from __future__ import annotations

import copy
from typing import Callable, Iterable

import torch
from torch import nn
from torch.nn.utils import prune

from ..types import PRUNABLE, PRUNE_SCOPES, CurvePoint, LayerSparsity, SparsityReport

__all__ = ["prunable_layers", "magnitude_prune", "sparsity_report", "sparsity_curve"]


# ---------------------------------------------------------------------------------------------------
# Helper (written in full)
# ---------------------------------------------------------------------------------------------------
def prunable_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` for every ``nn.Conv2d`` / ``nn.Linear`` (``PRUNABLE``) of ``model``, in
    ``named_modules()`` order. Their ``weight`` is what pruning zeroes; biases are left alone."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, PRUNABLE)]


# ---------------------------------------------------------------------------------------------------
# ## Task 2.12: unstructured magnitude pruning
# ---------------------------------------------------------------------------------------------------
def magnitude_prune(model: nn.Module, amount: float, *, scope: str = "global") -> nn.Module:
    """A copy of ``model`` whose smallest-magnitude weights are exactly zero.

    Args:
        model: any ``nn.Module`` (left unchanged).
        amount: fraction of weights to zero, 0..1.
        scope: ``"global"``: one magnitude threshold over every prunable weight together (layers end up
            with different sparsities); ``"layer"``: the same fraction in each layer.

    Returns:
        A deep copy in which, over the ``weight`` of every ``prunable_layers`` module, the
        ``round(amount * n)`` smallest |w| are 0.0 (``n`` = all those weights for "global", each layer's
        own count for "layer"), and every other value is unchanged. The pruning is permanent: no
        ``weight_orig`` / ``weight_mask`` left behind, no forward pre-hooks (``prune.remove``), so the
        model saves, exports and runs like any other.

    Raises:
        ValueError: ``amount`` outside [0, 1], or ``scope`` not in ``PRUNE_SCOPES``.

    Tolerance the grader applies (p2.compression.sparsity_exact): exact, layer by layer, on a model it
    builds; your ``sparsity_report`` must count what it counts.

    Guide: COMPRESSION_GUIDE.md#task-212-unstructured-magnitude-pruning
    """
    # Step 1: validate amount and scope; deep copy the model.
    # Step 2: prune: prune.global_unstructured(..., pruning_method=prune.L1Unstructured) for "global",
    #         prune.l1_unstructured(module, "weight", amount) on each layer for "layer".
    # Step 3: make it permanent: prune.remove on each (module, "weight").
    raise NotImplementedError("Task 2.12: see COMPRESSION_GUIDE.md#task-212-unstructured-magnitude-pruning")


def sparsity_report(model: nn.Module) -> SparsityReport:
    """Count the exact zeros (``== 0.0``) in the ``weight`` of every ``prunable_layers`` module.

    Args:
        model: any ``nn.Module`` (read only).

    Returns:
        ``SparsityReport(layers=(LayerSparsity(name, zeros, total), ...))`` in ``named_modules()`` order;
        ``.sparsity`` is then the overall fraction. A model still carrying pruning masks is counted through
        its effective ``weight`` (what the forward pass uses).

    Guide: COMPRESSION_GUIDE.md#task-212-unstructured-magnitude-pruning
    """
    # Step 1: for each prunable layer, zeros = (weight == 0).sum(), total = weight.numel().
    # Step 2: wrap them in a SparsityReport.
    raise NotImplementedError("Task 2.12: see COMPRESSION_GUIDE.md#task-212-unstructured-magnitude-pruning")


def sparsity_curve(model: nn.Module, amounts: Iterable[float], evaluate: Callable[[nn.Module], float], *,
                   scope: str = "global") -> list[CurvePoint]:
    """Prune ``model`` at each amount and measure what is left.

    Args:
        model: the trained model (left unchanged).
        amounts: fractions to try, each 0..1, in the order given (0.0 is the unpruned model).
        evaluate: returns the top-1 accuracy (0..1) of a model; called once per amount, on the pruned copy
            in eval mode.
        scope: as in ``magnitude_prune``.

    Returns:
        One ``CurvePoint(amount, sparsity measured by sparsity_report, accuracy)`` per amount.

    Guide: COMPRESSION_GUIDE.md#task-212-unstructured-magnitude-pruning
    """
    # Step 1: for each amount: magnitude_prune, eval(), sparsity_report(...).sparsity, evaluate(...).
    raise NotImplementedError("Task 2.12: see COMPRESSION_GUIDE.md#task-212-unstructured-magnitude-pruning")
