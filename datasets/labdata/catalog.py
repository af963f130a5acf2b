"""One catalog of workloads for phases, graders and notebooks: name -> model, input, data, metadata.

>>> from labdata import catalog
>>> catalog.list_models()
['resnet18', 'resnet50', 'mobilenet_v3_large', 'efficientnet_b0', 'digits_cnn', 'digits_resnet18', 'digits_detector']
>>> entry = catalog.get("digits_cnn")          # trains and caches it on first use (~10 s)
>>> x, y = entry.dataset("test")                # [359, 1, 32, 32] float32, [359] int64
>>> entry.metadata.test_accuracy                 # top-1, fraction 0..1, recorded when trained

Speed workloads (``resnet18`` ...) are untrained torchvision models: ``metadata.trained`` is False,
``dataset`` is None, and they must never be used for an accuracy criterion.

``python -m labdata.catalog`` prints the table (without training anything).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np
import torch
from torch import nn

from . import digits
from .detector import DigitsDetector
from .models import SPEED_ARCHITECTURES, DigitsCNN, build_speed_model
from .train import DETECTOR_NAME, RECIPES, build_untrained, ensure_detector, ensure_trained
from .video import ClipPaths, VideoConfig, cached_clip, read_ground_truth, read_video

__all__ = [
    "ModelMetadata",
    "CatalogEntry",
    "DigitsDataset",
    "ClipDataset",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "list_models",
    "build",
    "get",
    "count_flops",
    "count_params",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_DETECTOR = DETECTOR_NAME
_DESCRIPTIONS = {
    "digits_cnn": "Small CNN (3 conv-BN-ReLU-pool blocks + MLP head) for 1x32x32 digits; the size of "
                  "model the dynamic-batching and edge workloads use.",
    "digits_resnet18": "torchvision resnet18(num_classes=10) trained on 3x64x64 digits (grey "
                       "replicated to RGB); the quantization accuracy workload.",
}


# ---------------------------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelMetadata:
    """What a grader or notebook needs to know about a workload.

    Attributes:
        input_shape: (C, H, W) of one sample (the detector: one video frame).
        dtype: input dtype, "float32".
        mean, std: per-channel normalisation the input must already have (``(x - mean) / std``
            with x in 0..1); the detector takes raw 0..1 frames and normalises its crops itself.
        num_classes: output classes (1000 for the speed workloads, 10 for the digits).
        params: parameter count.
        flops: forward FLOPs per sample (multiply-add = 2), counted with
            ``torch.utils.flop_counter.FlopCounterMode``; the detector: per classified crop.
        trained: False for the untrained speed workloads.
        test_accuracy: top-1 (fraction 0..1) on the digits test split, recorded when trained;
            the detector: F1 of labelled detections at IoU >= 0.5 on the default clip. None if untrained.
        description: one paragraph for humans.
        task: "classification" or "detection".
        extra: anything else (training record, detector precision/recall, cache file).
    """

    input_shape: tuple[int, int, int]
    dtype: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    num_classes: int
    params: int
    flops: int
    trained: bool
    test_accuracy: float | None
    description: str
    task: str = "classification"
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DigitsDataset:
    """The digits at one model's resolution. ``dataset("test")`` -> (images, labels).

    Attributes:
        size, channels: see ``labdata.digits.load_split``.
    """

    size: int
    channels: int

    def load(self, split: str = "test", *, normalize: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """images float32 [N, channels, size, size], labels int64 [N] of ``split``
        ("train", "val", "calib" or "test")."""
        return digits.load_split(split, size=self.size, channels=self.channels, normalize=normalize)

    __call__ = load

    def batches(self, split: str = "test", batch_size: int = 64, *, shuffle: bool = False,
                seed: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Iterate ``split`` in batches (see ``labdata.digits.iterate_batches``)."""
        x, y = self.load(split)
        return digits.iterate_batches(x, y, batch_size, shuffle=shuffle, seed=seed)


@dataclass(frozen=True)
class ClipDataset:
    """A synthetic clip with ground truth. ``dataset()`` -> (frames uint8 [T, H, W, 3] BGR, ground truth)."""

    config: VideoConfig = field(default_factory=VideoConfig)

    def paths(self) -> ClipPaths:
        """The cached clip's video and ground-truth files (generated on first use, ~1 s)."""
        return cached_clip(self.config)[0]

    def load(self) -> tuple[np.ndarray, dict[str, Any]]:
        p = self.paths()
        return read_video(p.video), read_ground_truth(p.ground_truth)

    __call__ = load


@dataclass
class CatalogEntry:
    """A workload: ``model`` (eval mode), ``example_input`` (batch 1), ``dataset``, ``metadata``."""

    name: str
    model: nn.Module
    example_input: torch.Tensor
    dataset: DigitsDataset | ClipDataset | None
    metadata: ModelMetadata


# ---------------------------------------------------------------------------------------------
# Counting
# ---------------------------------------------------------------------------------------------


def count_params(model: nn.Module) -> int:
    """Number of parameters (buffers such as BatchNorm statistics are not counted)."""
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, example_input: torch.Tensor) -> int:
    """Forward FLOPs for ``example_input`` (a multiply-add counts 2; convolutions and matmuls only)."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(example_input)
    return int(counter.get_total_flops())


_FLOPS: dict[str, int] = {}  # name -> FLOPs per sample, counted once per process


def _flops_of(name: str, model: nn.Module) -> int:
    if name not in _FLOPS:
        if isinstance(model, DigitsDetector):  # per classified crop
            _FLOPS[name] = count_flops(model.classifier, torch.zeros(1, 1, 32, 32))
        else:
            _FLOPS[name] = count_flops(model, torch.zeros(1, *_input_shape(name)))
    return _FLOPS[name]


def _input_shape(name: str) -> tuple[int, int, int]:
    if name in SPEED_ARCHITECTURES:
        return (3, 224, 224)
    if name == _DETECTOR:
        cfg = VideoConfig()
        return (3, cfg.height, cfg.width)
    cfg = RECIPES[name]
    return (cfg.channels, cfg.size, cfg.size)


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------


def list_models() -> list[str]:
    """Names accepted by :func:`get` and :func:`build`: speed workloads first, then the trained ones."""
    return [*SPEED_ARCHITECTURES, *RECIPES, _DETECTOR]


def build(name: str) -> nn.Module:
    """The architecture ``name`` with freshly initialised weights, in eval mode (no training, no cache).

    Use it for speed workloads or to ``load_state_dict`` into.
    """
    if name in SPEED_ARCHITECTURES:
        return build_speed_model(name)
    if name in RECIPES:
        return build_untrained(RECIPES[name].arch).eval()
    if name == _DETECTOR:
        return DigitsDetector(DigitsCNN().eval()).eval()
    raise KeyError(f"unknown model {name!r}; choose one of {list_models()}")


def get(name: str, *, train_if_missing: bool = True) -> CatalogEntry:
    """The workload ``name`` ready to run.

    Args:
        name: one of :func:`list_models`.
        train_if_missing: train (and cache) a digits model that is not cached yet; False raises
            FileNotFoundError instead (the message says to run ``make models``).

    Returns:
        A :class:`CatalogEntry` whose model is in eval mode on the CPU.
    """
    if name not in list_models():
        raise KeyError(f"unknown model {name!r}; choose one of {list_models()}")
    shape = _input_shape(name)
    if name in SPEED_ARCHITECTURES:
        model = build_speed_model(name)
        example = torch.randn(1, *shape, generator=torch.Generator().manual_seed(0))
        meta = ModelMetadata(
            input_shape=shape, dtype="float32", mean=IMAGENET_MEAN, std=IMAGENET_STD,
            num_classes=1000, params=count_params(model), flops=_flops_of(name, model), trained=False,
            test_accuracy=None,
            description=(f"torchvision {name}, weights=None (UNTRAINED, random init with seed 0): "
                         "a speed workload only, never for accuracy."))
        return CatalogEntry(name, model, example, None, meta)

    if name == _DETECTOR:
        model, record, _ = ensure_detector(train_if_missing=train_if_missing)
        data = ClipDataset()
        frame = read_video(data.paths().video)[0]  # [H, W, 3] uint8 BGR
        example = torch.from_numpy(frame[:, :, ::-1].copy()).permute(2, 0, 1)[None].float() / 255
        meta = ModelMetadata(
            input_shape=shape, dtype="float32", mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0),
            num_classes=10, params=count_params(model), flops=_flops_of(name, model), trained=True,
            test_accuracy=record["f1"], task="detection", extra=record,
            description=("Region proposal (background subtraction, threshold, connected "
                         "components) + digits_cnn on 32x32 crops. Input: frames 0..1; output: "
                         "torchvision-style dicts (boxes, labels, scores). test_accuracy = F1 of "
                         "labelled detections at IoU 0.5 on the default clip; flops = per crop."))
        return CatalogEntry(name, model, example, data, meta)

    result, _ = ensure_trained(name, train_if_missing=train_if_missing)
    c, size, _ = shape
    data = DigitsDataset(size=size, channels=c)
    example = data.load("test")[0][:1].clone()
    rec = result.record
    meta = ModelMetadata(
        input_shape=shape, dtype="float32", mean=(digits.MEAN,) * c, std=(digits.STD,) * c,
        num_classes=digits.NUM_CLASSES, params=count_params(result.model), flops=_flops_of(name, result.model),
        trained=True, test_accuracy=rec["test_accuracy"], extra=rec,
        description=_DESCRIPTIONS.get(name, f"{RECIPES[name].arch} trained on the digits."))
    return CatalogEntry(name, result.model, example, data, meta)


def main() -> int:
    """Print the catalog (``python -m labdata.catalog``); trains nothing."""
    print(f"{'name':<20}{'input':<14}{'params':>12}{'MFLOPs':>10}  {'trained':<8}{'test acc':>9}")
    for name in list_models():
        try:
            m = get(name, train_if_missing=False).metadata
            acc = "-" if m.test_accuracy is None else f"{100 * m.test_accuracy:.2f}%"
            print(f"{name:<20}{'x'.join(map(str, m.input_shape)):<14}{m.params:>12,}"
                  f"{m.flops / 1e6:>10.1f}  {str(m.trained):<8}{acc:>9}")
        except FileNotFoundError:
            print(f"{name:<20}not trained yet: run `make models`")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
