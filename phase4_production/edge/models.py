"""The models and the clip of the edge part (helpers, written in full).

The detector is Phase 4's (``labdata.detector``): region proposal with OpenCV, then a classifier on every
proposal's 32x32 crop. On the edge the classifier is the part worth optimizing:

- :func:`original_classifier` is the model the product was trained with and the accuracy every variant is held
  to: the catalog's ``digits_resnet18`` (11.2 M parameters, trained on 3x64x64 digits), wrapped so that it takes
  the detector's crops. About 18 ms per frame on one core in FP32 (4 crops): 30 FPS fits, a slowdown does not.
- :func:`small_classifier` is the catalog's ``digits_cnn`` (0.15 M parameters), a smaller model of about the
  same accuracy on clean crops: the cheap rung of an adaptive ladder.

Both take float32 [N, 1, 32, 32] crops normalised as ``labdata.proposals.propose_crops`` cuts them, and return
[N, 10] logits.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = ["CropClassifier", "original_classifier", "small_classifier", "edge_clip_config", "calibration_crops",
           "edge_frames", "CLIP_FPS", "CLIP_SIZE"]

#: The edge clip: 320 x 240 at 30 FPS (width, height).
CLIP_SIZE = (320, 240)
CLIP_FPS = 30.0


class CropClassifier(nn.Module):
    """A classifier trained on 3 x ``size`` x ``size`` digits, fed the detector's 1 x 32 x 32 crops.

    The crop is resized (bilinear) to the model's resolution and its grey channel repeated three times, inside
    ``forward``: an exported model then takes the crops as they are, on any runtime.
    """

    def __init__(self, model: nn.Module, size: int = 64):
        super().__init__()
        self.model, self.size = model, size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        return self.model(x.expand(-1, 3, -1, -1))


def original_classifier() -> nn.Module:
    """The catalog's ``digits_resnet18`` taking [N, 1, 32, 32] crops (eval mode; trained and cached by ``make models``)."""
    from labdata import catalog

    return CropClassifier(catalog.get("digits_resnet18").model.eval()).eval()


def small_classifier() -> nn.Module:
    """The catalog's ``digits_cnn`` (eval mode): [N, 1, 32, 32] crops to [N, 10] logits."""
    from labdata import catalog

    return catalog.get("digits_cnn").model.eval()


def edge_clip_config(seed: int, frames: int = 150):
    """The clip an edge device sees: 320 x 240 at 30 FPS, four digits moving up to 3 px per frame.

    Args:
        seed: the clip's seed (the grader draws fresh ones; calibration uses ``CALIBRATION_SEED``).
        frames: length in frames (30 per second).

    Returns:
        A ``labdata.video.VideoConfig``.
    """
    from labdata.video import VideoConfig

    return VideoConfig(frames=frames, fps=CLIP_FPS, width=CLIP_SIZE[0], height=CLIP_SIZE[1], num_objects=4,
                       seed=seed, max_speed=3.0)


def edge_frames(seed: int, frames: int = 40) -> np.ndarray:
    """The frames of an edge clip, rendered in memory (no file written; fine while graded).

    Returns:
        uint8 [frames, 240, 320, 3] BGR.
    """
    from labdata.video import render_frames

    return np.stack([f for f, _ in render_frames(edge_clip_config(seed, frames))])


#: Seed of the clip that calibration crops come from (the grader never grades on it).
CALIBRATION_SEED = 7000


def calibration_crops(count: int = 64, *, seed: int = CALIBRATION_SEED) -> np.ndarray:
    """Crops for INT8 calibration, cut by the detector from a clip of their own.

    Args:
        count: how many crops (>= 1); fewer if the clip has fewer proposals.
        seed: the clip's seed.

    Returns:
        float32 [count, 1, 32, 32], normalised like the detector's crops.
    """
    import cv2

    from labdata.proposals import propose_crops

    crops = [propose_crops(cv2.cvtColor(f, cv2.COLOR_BGR2GRAY))[1] for f in edge_frames(seed, max(30, count // 2))]
    out = np.concatenate(crops)[:count]
    if not len(out):
        raise RuntimeError("the calibration clip gave no proposals")
    return out.astype(np.float32)
