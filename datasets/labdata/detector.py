"""The Phase 4 digit detector: classic region proposal + the digits CNN as crop classifier.

Why this design rather than a small single-stage detector: on 2 CPU cores it runs at hundreds
of frames per second and needs no extra training (the proposal stage has no weights; the
classifier is the already-trained ``digits_cnn``), and each stage can be tested on its own
(proposals against ground-truth boxes, crops against the classifier's test accuracy). Its
limits are visible and teachable: overlapping digits merge into one proposal, and digits cut
by the frame edge are hard to classify.

Pipeline for one frame (uint8 [H, W, 3] BGR, or float [3, H, W] 0..1):

1. grey -> Gaussian blur (5x5) -> background = median blur (51x51); ``diff = blur - background``.
2. threshold ``diff`` at ``max(6 * noise sigma (MAD), min_contrast)``, dilate 7x3 (tall, to join
   one digit's strokes), connected components; drop components smaller than ``min_area`` pixels
   or ``min_height`` rows.
3. per component: re-threshold at ``INK_THRESHOLD`` x its peak contrast to get a tight ink box
   (the ground truth's definition); split a box wider than 1.15x its height at its emptiest
   column (two digits side by side); crop a square of side max(h, w) around each box, scale the
   ink to 0..1, resize to 32x32 (area interpolation), normalise with the digits MEAN/STD.
4. classify all crops in one batch; score = softmax probability of the predicted class.

Output follows torchvision's detection models: a list (one per image) of dicts with
``boxes`` float32 [K, 4] (x1, y1, x2, y2 pixels, x2/y2 exclusive), ``labels`` int64 [K],
``scores`` float32 [K].
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from .digits import MEAN, STD
from .proposals import propose_crops
from .video import INK_THRESHOLD

__all__ = ["DigitsDetector", "propose_regions", "box_iou", "evaluate_detections"]


# ---------------------------------------------------------------------------------------------
# Region proposal (no weights)
# ---------------------------------------------------------------------------------------------


def propose_regions(
    grey: np.ndarray,
    *,
    min_contrast: float = 12.0,
    min_area: int = 30,
    min_height: int = 10,
    crop_size: int = 32,
) -> tuple[np.ndarray, torch.Tensor]:
    """Find bright blobs on a smooth background and cut classifier-ready crops.

    The work is :func:`labdata.proposals.propose_crops` (numpy and OpenCV only, so an edge bundle can carry it);
    this wraps its crops as a tensor.

    Args:
        grey: uint8 [H, W] frame.
        min_contrast: smallest ink-minus-background difference kept, in grey levels (0..255).
        min_area: smallest component, in pixels.
        min_height: smallest component height, in pixels.
        crop_size: side of the crops in pixels.

    Returns:
        boxes: int64 [K, 4] tight ink boxes (x1, y1, x2, y2), x2/y2 exclusive.
        crops: float32 [K, 1, crop_size, crop_size], normalised like ``load_split``.
    """
    boxes, crops = propose_crops(grey, min_contrast=min_contrast, min_area=min_area, min_height=min_height,
                                 crop_size=crop_size, mean=MEAN, std=STD, ink_threshold=INK_THRESHOLD)
    return boxes, torch.from_numpy(crops)


# ---------------------------------------------------------------------------------------------
# The detector module
# ---------------------------------------------------------------------------------------------


class DigitsDetector(nn.Module):
    """Region proposal + crop classifier (see the module docstring).

    Args:
        classifier: a model mapping [K, 1, 32, 32] normalised crops to [K, 10] logits
            (``labdata.catalog.get("digits_cnn").model``).
        score_threshold: detections whose class probability is below it are dropped.
        min_contrast, min_area, min_height: see :func:`propose_regions`.
    """

    def __init__(self, classifier: nn.Module, *, score_threshold: float = 0.5,
                 min_contrast: float = 12.0, min_area: int = 30, min_height: int = 10) -> None:
        super().__init__()
        self.classifier = classifier
        self.score_threshold = score_threshold
        self.proposal_args = dict(min_contrast=min_contrast, min_area=min_area, min_height=min_height)

    def config(self) -> dict[str, Any]:
        return {"score_threshold": self.score_threshold, **self.proposal_args}

    @torch.no_grad()
    def detect_grey(self, grey: np.ndarray) -> dict[str, torch.Tensor]:
        """Detect digits in one uint8 [H, W] grey frame."""
        boxes, crops = propose_regions(grey, **self.proposal_args)
        if len(boxes) == 0:
            return {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64),
                    "scores": torch.zeros(0)}
        probs = torch.softmax(self.classifier(crops), dim=1)  # [K, 10]
        scores, labels = probs.max(dim=1)
        keep = scores >= self.score_threshold
        return {"boxes": torch.from_numpy(boxes).float()[keep], "labels": labels[keep],
                "scores": scores[keep]}

    def detect_bgr(self, frame: np.ndarray) -> dict[str, torch.Tensor]:
        """Detect digits in one uint8 [H, W, 3] BGR frame (as ``labdata.video.decode_frames`` gives)."""
        import cv2

        if frame.ndim != 3 or frame.dtype != np.uint8:
            raise ValueError(f"expected a uint8 [H, W, 3] frame, got {frame.dtype} {frame.shape}")
        return self.detect_grey(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))

    def forward(self, images: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        """Detect digits in a batch of frames.

        Args:
            images: float32 [B, 3, H, W] (RGB or BGR, values 0..1) or [B, 1, H, W] grey.

        Returns:
            One dict per image: ``boxes`` float32 [K, 4], ``labels`` int64 [K], ``scores`` float32 [K].
        """
        if images.ndim != 4 or images.shape[1] not in (1, 3):
            raise ValueError(f"expected [B, 1|3, H, W] images, got {tuple(images.shape)}")
        grey = images.mean(dim=1) if images.shape[1] == 3 else images[:, 0]  # [B, H, W]
        grey_u8 = (grey.clamp(0, 1) * 255 + 0.5).to(torch.uint8).cpu().numpy()
        return [self.detect_grey(g) for g in grey_u8]


# ---------------------------------------------------------------------------------------------
# Evaluation against clip ground truth
# ---------------------------------------------------------------------------------------------


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes a [N, 4] and b [M, 4] (x1, y1, x2, y2; x2/y2 exclusive) -> float [N, M]."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    ix = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    iy = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = ix * iy
    area = lambda z: (z[:, 2] - z[:, 0]) * (z[:, 3] - z[:, 1])  # noqa: E731
    union = area(a)[:, None] + area(b)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def evaluate_detections(
    predictions: Sequence[dict[str, Any]],
    gt_frames: Sequence[dict[str, Any]],
    *,
    iou_threshold: float = 0.5,
    min_visible: float = 0.5,
) -> dict[str, float]:
    """Score detections against a clip's ground truth (greedy matching by score, per frame).

    A true positive overlaps an unmatched ground-truth object with IoU >= ``iou_threshold`` and
    has its label. Objects less than ``min_visible`` visible are "ignore" regions: a detection
    that matches one counts neither way, and missing one is not a miss.

    Args:
        predictions: per frame, a dict with ``boxes`` [K, 4], ``labels`` [K], ``scores`` [K].
        gt_frames: the ground truth's ``frames`` list (same length).

    Returns:
        ``precision``, ``recall``, ``f1`` (fractions), ``tp``, ``fp``, ``fn`` (counts), and
        ``localisation_recall`` (box found, label ignored).
    """
    if len(predictions) != len(gt_frames):
        raise ValueError(f"{len(predictions)} prediction frames for {len(gt_frames)} ground-truth frames")
    tp = fp = fn = found = 0
    for pred, gt in zip(predictions, gt_frames):
        boxes = np.asarray(pred["boxes"], np.float64).reshape(-1, 4)
        labels = np.asarray(pred["labels"]).reshape(-1)
        order = np.argsort(-np.asarray(pred["scores"], np.float64).reshape(-1), kind="stable")
        objs = gt["objects"]
        gboxes = np.array([o["box"] for o in objs], np.float64).reshape(-1, 4)
        care = np.array([o["visible"] >= min_visible for o in objs], bool)
        iou = box_iou(boxes, gboxes)
        used = np.zeros(len(objs), bool)
        located = np.zeros(len(objs), bool)
        for i in order:
            cand = np.flatnonzero(~used & (iou[i] >= iou_threshold)) if len(objs) else []
            if len(cand) == 0:
                fp += 1
                continue
            j = cand[np.argmax(iou[i, cand])]
            located[j] = True
            if not care[j]:
                used[j] = True
                continue
            if int(labels[i]) == int(objs[j]["label"]):
                used[j] = True
                tp += 1
            else:
                fp += 1
        fn += int((care & ~used).sum())
        found += int((care & located).sum())
    precision = tp / max(tp + fp, 1)
    recall = tp / max(tp + fn, 1)
    f1 = 2 * precision * recall / max(precision + recall, 1e-12)
    return {"precision": precision, "recall": recall, "f1": f1, "tp": tp, "fp": fp, "fn": fn,
            "localisation_recall": found / max(tp + fn, 1)}
