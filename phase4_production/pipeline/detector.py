"""The detector's two halves as the pipeline runs them (helpers, written in full).

The Phase 4 detector (``labdata.detector``) is region proposal (OpenCV, no weights: ``propose``) followed by
the digits CNN classifying every proposal's 32x32 crop (``default_classifier``). The pipeline runs the first
half per frame in the ``preprocess`` stage and the second half on crops of many frames and streams at once
in the ``inference`` stage: that split is what lets inference batch across streams.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = ["CROP_SIZE", "default_classifier", "propose"]

#: Side of a classifier crop, in pixels.
CROP_SIZE = 32


def default_classifier() -> nn.Module:
    """The trained digits CNN (``labdata.catalog``'s ``digits_cnn``, cached by ``make models``), in eval mode.

    Input float32 [K, 1, 32, 32] normalised crops, output [K, 10] logits.
    """
    from labdata import catalog

    return catalog.get("digits_cnn").model.eval()


def propose(image: np.ndarray) -> tuple[np.ndarray, torch.Tensor]:
    """Region proposals of one frame.

    Args:
        image: uint8 [H, W, 3] BGR.

    Returns:
        boxes: int64 [K, 4] tight ink boxes (x1, y1, x2, y2), x2/y2 exclusive.
        crops: float32 [K, 1, 32, 32], normalised for the classifier; K may be 0.

    Raises:
        ValueError: ``image`` is not a uint8 [H, W, 3] array.
    """
    import cv2

    from labdata.detector import propose_regions

    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected a uint8 [H, W, 3] BGR frame, got "
                         f"{getattr(image, 'dtype', type(image).__name__)} {getattr(image, 'shape', '')}")
    return propose_regions(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), crop_size=CROP_SIZE)
