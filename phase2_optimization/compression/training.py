"""Helpers (written in full) that every training loop of this part shares: seeded batches with random
shifts, AdamW with a one-cycle schedule, a thread budget, top-1 accuracy.

``fine_tune`` (Task 2.13) and ``train_student`` (Task 2.15) are built on these, so two runs with the same
``FineTuneConfig`` see the same images in the same order with the same shifts.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import nn

from .types import FineTuneConfig

__all__ = ["training_batches", "shifted_views", "view_batches", "make_optimizer", "thread_budget", "top1_accuracy",
           "make_student", "labelled_subset"]


def training_batches(x: torch.Tensor, y: torch.Tensor, config: FineTuneConfig,
                     generator: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch of ``(images [B, C, H, W] float32, labels [B] int64)`` in a shuffled order drawn from
    ``generator``, each batch rolled by one random (dy, dx) in ``[-max_shift, max_shift]``."""
    if len(x) != len(y):
        raise ValueError(f"{len(x)} images but {len(y)} labels")
    order = torch.randperm(len(y), generator=generator)
    for start in range(0, len(y), config.batch_size):
        idx = order[start:start + config.batch_size]
        xb = x[idx]
        if config.max_shift:
            dy, dx = (int(v) for v in torch.randint(-config.max_shift, config.max_shift + 1, (2,), generator=generator))
            xb = torch.roll(xb, shifts=(dy, dx), dims=(2, 3))
        yield xb, y[idx]


def shifted_views(x: torch.Tensor, max_shift: int) -> torch.Tensor:
    """Every translation of the images ``x`` [N, C, H, W] by (dy, dx) in ``[-max_shift, max_shift]``, as
    ``[V, N, C, H, W]`` with V = (2 * max_shift + 1) ** 2, view ``v`` shifted by
    ``(v // (2 * max_shift + 1) - max_shift, v % (2 * max_shift + 1) - max_shift)`` (``torch.roll`` on H and W;
    view ``V // 2`` is the unshifted image).

    A small training set seen through a finite set of shifts: a frozen teacher's answer to each view can be
    computed once, before training, instead of once per batch (Task 2.15)."""
    if max_shift < 0:
        raise ValueError(f"max_shift must be >= 0, got {max_shift}")
    offsets = range(-max_shift, max_shift + 1)
    return torch.stack([torch.roll(x, shifts=(dy, dx), dims=(2, 3)) for dy in offsets for dx in offsets])


def view_batches(n_images: int, n_views: int, config: FineTuneConfig,
                 generator: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch of ``(image indices [B] int64, view indices [B] int64)``: the images in a shuffled order drawn
    from ``generator``, ``config.batch_size`` at a time, and for each image its own random view in
    ``[0, n_views)`` (a per-image shift when the views come from ``shifted_views``). Pick the batch with
    ``views[view_idx, image_idx]``."""
    order = torch.randperm(n_images, generator=generator)
    for start in range(0, n_images, config.batch_size):
        idx = order[start:start + config.batch_size]
        yield idx, torch.randint(n_views, (len(idx),), generator=generator)


def make_optimizer(model: nn.Module, config: FineTuneConfig, n_images: int):
    """AdamW(lr, weight_decay) and a ``OneCycleLR`` stepped once per batch over ``config.epochs`` epochs."""
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps = config.epochs * -(-n_images // config.batch_size)
    return opt, torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=steps)


@contextlib.contextmanager
def thread_budget(threads: int | None):
    """``torch.set_num_threads(threads)`` inside the block (nothing when None), restored after."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def top1_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 128) -> float:
    """Top-1 accuracy (0..1) of ``model`` in eval mode on images ``x`` with labels ``y``."""
    model.eval()
    correct = 0
    with torch.inference_mode():
        for start in range(0, len(y), batch_size):
            correct += int((model(x[start:start + batch_size]).argmax(1) == y[start:start + batch_size]).sum())
    return correct / len(y)


def make_student(width: int = 32, *, in_channels: int = 3, num_classes: int = 10, pool: int = 4,
                 seed: int = 0) -> nn.Module:
    """The small student of Task 2.15, freshly initialised from ``seed``.

    ``AvgPool2d(pool)`` first (64x64 digits become 16x16: the student looks at a thumbnail), then three stages of
    3x3 conv (no bias) - BatchNorm - ReLU - 2x2 max-pool with ``width``, ``2 * width`` and ``4 * width`` channels,
    global average pooling and one Linear. For 3x64x64 digits and width 32: 94,762 parameters (1/118 of the digits
    ResNet-18) and about 7 MFLOPs per image (1/42).
    """
    torch.manual_seed(seed)
    widths = [in_channels, width, 2 * width, 4 * width]
    layers: list[nn.Module] = [nn.AvgPool2d(pool)] if pool > 1 else []
    for a, b in zip(widths[:-1], widths[1:]):
        layers += [nn.Conv2d(a, b, 3, padding=1, bias=False), nn.BatchNorm2d(b), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(widths[-1], num_classes))


def labelled_subset(x: torch.Tensor, y: torch.Tensor, per_class: int = 5, seed: int = 0) -> tuple[torch.Tensor,
                                                                                                  torch.Tensor]:
    """``per_class`` images of every class, drawn with ``seed`` (class by class, ascending): the small labelled
    budget of Task 2.15, where a teacher's soft targets teach a student the most. Returns (images, labels)."""
    gen = torch.Generator().manual_seed(seed)
    picks = []
    for c in torch.unique(y).tolist():
        members = (y == c).nonzero().squeeze(1)
        if len(members) < per_class:
            raise ValueError(f"class {c} has {len(members)} images, fewer than per_class={per_class}")
        picks.append(members[torch.randperm(len(members), generator=gen)[:per_class]])
    idx = torch.cat(picks)
    return x[idx], y[idx]
