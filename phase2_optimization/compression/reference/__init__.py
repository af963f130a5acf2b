# REFERENCE SOLUTION: excluded from the learner release (make release).
"""Phase 2 compression: the public API the compression graders call. Fill in every ``NotImplementedError``.

Work through the tasks in order, reading the matching section of
``phase2_optimization/COMPRESSION_GUIDE.md`` first:

    Task 2.12  unstructured.py     magnitude_prune, sparsity_report, sparsity_curve
    Task 2.13  structured.py       channel_importance, prune_channels, prune_resnet_channels, count_cost,
                                   recalibrate_batchnorm, fine_tune
    Task 2.14  semi_structured.py  two_four_mask, apply_two_four, to_semi_structured (NVIDIA GPU)
    Task 2.15  distillation.py     soft_targets, distillation_loss, train_student
    Task 2.16  peer_runtime.py     compile_openvino, quantize_openvino, kernel_profile, ort_kernel_profile

Check one task with ``make grade PHASE=2 TASK=N`` (N = 12..16). ``types.py`` and ``training.py`` (both beside
this folder) and the helpers marked "written in full" are complete: use them, keep their names.
"""
from .distillation import distillation_loss, soft_targets, train_student
from .peer_runtime import compile_openvino, kernel_profile, ort_kernel_profile, quantize_openvino, run_openvino
from .semi_structured import (SEMI_STRUCTURED_TILE, apply_two_four, eligible_for_two_four, semi_structured_support,
                              to_semi_structured, two_four_mask)
from .structured import (channel_importance, count_cost, fine_tune, prune_channels, prune_resnet_channels,
                         recalibrate_batchnorm)
from ..training import (labelled_subset, make_optimizer, make_student, shifted_views, thread_budget, top1_accuracy,
                        training_batches, view_batches)
from ..types import (PRUNABLE, PRUNE_SCOPES, CurvePoint, DistillConfig, FineTuneConfig, LayerSparsity, ModelCost,
                     KernelTime, SemiStructuredNotSupported, SparsityReport)
from .unstructured import magnitude_prune, prunable_layers, sparsity_curve, sparsity_report

__all__ = [
    # types and training helpers
    "PRUNABLE", "PRUNE_SCOPES", "LayerSparsity", "SparsityReport", "CurvePoint", "ModelCost", "FineTuneConfig",
    "DistillConfig", "SemiStructuredNotSupported", "training_batches", "shifted_views", "view_batches",
    "make_optimizer", "thread_budget", "top1_accuracy", "make_student", "labelled_subset",
    # Task 2.12
    "prunable_layers", "magnitude_prune", "sparsity_report", "sparsity_curve",
    # Task 2.13
    "channel_importance", "prune_channels", "prune_resnet_channels", "count_cost", "recalibrate_batchnorm",
    "fine_tune",
    # Task 2.14
    "SEMI_STRUCTURED_TILE", "eligible_for_two_four", "semi_structured_support", "two_four_mask", "apply_two_four",
    "to_semi_structured",
    # Task 2.15
    "soft_targets", "distillation_loss", "train_student",
    # Task 2.16
    "KernelTime", "run_openvino", "compile_openvino", "quantize_openvino", "kernel_profile", "ort_kernel_profile",
]
