"""Configs and reports shared by the compression tasks (helpers, written in full).

The graders build these with keyword arguments: keep the names, defaults and units.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

__all__ = [
    "PRUNABLE", "PRUNE_SCOPES", "LayerSparsity", "SparsityReport", "CurvePoint", "ModelCost", "FineTuneConfig",
    "DistillConfig", "SemiStructuredNotSupported", "KernelTime",
]

#: The layer types whose ``weight`` magnitude pruning and sparsity reports consider (biases never).
PRUNABLE = (nn.Conv2d, nn.Linear)
#: ``magnitude_prune`` scopes: one threshold over every prunable weight, or the same fraction per layer.
PRUNE_SCOPES = ("global", "layer")


@dataclass(frozen=True)
class LayerSparsity:
    """Exact zeros in one layer's ``weight``: ``name`` is the module's name in ``model.named_modules()``."""
    name: str
    zeros: int
    total: int

    @property
    def sparsity(self) -> float:
        """Fraction of zeros, 0..1."""
        return self.zeros / self.total if self.total else 0.0


@dataclass(frozen=True)
class SparsityReport:
    """Zeros in every prunable weight of a model, in ``named_modules()`` order."""
    layers: tuple[LayerSparsity, ...]

    @property
    def zeros(self) -> int:
        return sum(layer.zeros for layer in self.layers)

    @property
    def total(self) -> int:
        return sum(layer.total for layer in self.layers)

    @property
    def sparsity(self) -> float:
        """Fraction of zeros over every prunable weight, 0..1."""
        return self.zeros / self.total if self.total else 0.0

    def by_name(self) -> dict[str, LayerSparsity]:
        return {layer.name: layer for layer in self.layers}


@dataclass(frozen=True)
class CurvePoint:
    """One point of a sparsity/accuracy curve: the requested ``amount`` (0..1), the ``sparsity`` measured
    on the pruned model (0..1) and its top-1 ``accuracy`` (0..1) as returned by the evaluate callback."""
    amount: float
    sparsity: float
    accuracy: float


@dataclass(frozen=True)
class ModelCost:
    """What a model costs per sample: ``params`` (count, every parameter) and ``flops`` (forward FLOPs for
    one sample, counted by ``torch.utils.flop_counter.FlopCounterMode``: a multiply-add is 2 FLOPs)."""
    params: int
    flops: int


@dataclass(frozen=True)
class FineTuneConfig:
    """How ``fine_tune`` trains (Task 2.13), and how ``train_student`` trains (Task 2.15).

    Attributes:
        epochs: passes over the training images.
        lr: AdamW peak learning rate; one-cycle schedule (``torch.optim.lr_scheduler.OneCycleLR``) per step.
        weight_decay: AdamW weight decay.
        batch_size: images per step; the last, smaller batch is kept.
        max_shift: random translation by up to this many pixels (``torch.roll`` on H and W), 0 for none:
            one shift per batch in ``fine_tune`` (``training_batches``), one per image in ``train_student``
            (``shifted_views`` and ``view_batches``).
        seed: seeds the model's dropout, the batch order and the shifts (a ``torch.Generator``).
        threads: ``torch.set_num_threads`` while training (restored after), None to leave it.
    """
    epochs: int = 4
    lr: float = 3e-4
    weight_decay: float = 1e-4
    batch_size: int = 64
    max_shift: int = 4
    seed: int = 0
    threads: int | None = None

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs and batch_size must be >= 1, got {self.epochs} and {self.batch_size}")
        if not self.lr > 0 or self.weight_decay < 0 or self.max_shift < 0:
            raise ValueError("lr must be > 0, weight_decay and max_shift >= 0")


def _student_recipe() -> FineTuneConfig:
    return FineTuneConfig(epochs=120, lr=3e-3, weight_decay=0.01, batch_size=25, max_shift=2)


@dataclass(frozen=True)
class DistillConfig:
    """Knowledge distillation's two knobs (Task 2.15), and how the student is trained.

    The default recipe is the one the grader uses: 5 labelled images per class (``labelled_subset``), 120 epochs of
    2 batches of 25, AdamW at 3e-3 with weight decay 0.01, each image shifted by up to 2 pixels (its own shift,
    one of 25 views); T = 8, alpha = 0.7.

    Attributes:
        temperature: T > 0; both logit vectors are divided by T before the softmax (T = 1: plain softmax).
        alpha: weight of the soft (teacher) term, 0..1; the hard-label cross-entropy gets ``1 - alpha``.
        train: how the student is trained (epochs, learning rate, shifts, seed).
    """
    temperature: float = 8.0
    alpha: float = 0.7
    train: FineTuneConfig = field(default_factory=_student_recipe)

    def __post_init__(self) -> None:
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {self.alpha}")


class SemiStructuredNotSupported(RuntimeError):
    """2:4 sparse kernels need an NVIDIA GPU of compute capability 8.0+ (Ampere or newer) and float16/bfloat16."""


@dataclass(frozen=True)
class KernelTime:
    """Where one runtime spends one inference (Task 2.16): every executed node of one ``node_type`` run by one
    ``exec_type`` (OpenVINO: the kernel implementation, e.g. ``brgconv_avx2_I8``; ONNX Runtime: the execution
    provider), ``calls`` such nodes per inference, ``ms`` their summed time per inference (milliseconds)."""
    node_type: str
    exec_type: str
    calls: int
    ms: float
