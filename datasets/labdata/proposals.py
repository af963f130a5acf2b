"""Region proposal for the Phase 4 digit detector, in numpy and OpenCV only (no torch, no other labdata module).

``labdata.detector`` wraps it for the pipeline; an edge bundle (Phase 4, part ``edge``) copies this file as it is,
because a device runs without torch. The constants below repeat ``labdata.digits.MEAN``/``STD`` and
``labdata.video.INK_THRESHOLD`` so the file stands alone; ``tests/data/test_detector.py`` checks they agree.
"""

from __future__ import annotations

import numpy as np

__all__ = ["propose_crops", "DIGITS_MEAN", "DIGITS_STD", "INK_THRESHOLD"]

DIGITS_MEAN = 0.3052  # labdata.digits.MEAN
DIGITS_STD = 0.3233  # labdata.digits.STD
INK_THRESHOLD = 0.25  # labdata.video.INK_THRESHOLD


def propose_crops(
    grey: np.ndarray,
    *,
    min_contrast: float = 12.0,
    min_area: int = 30,
    min_height: int = 10,
    crop_size: int = 32,
    mean: float = DIGITS_MEAN,
    std: float = DIGITS_STD,
    ink_threshold: float = INK_THRESHOLD,
) -> tuple[np.ndarray, np.ndarray]:
    """Find bright blobs on a smooth background and cut classifier-ready crops.

    Args:
        grey: uint8 [H, W] frame.
        min_contrast: smallest ink-minus-background difference kept, in grey levels (0..255).
        min_area: smallest component, in pixels.
        min_height: smallest component height, in pixels.
        crop_size: side of the crops in pixels.
        mean, std: the classifier's input normalisation (the digits data's, ``labdata.digits.MEAN``/``STD``).
        ink_threshold: share of a blob's peak contrast that counts as ink for its tight box.

    Returns:
        boxes: int64 [K, 4] tight ink boxes (x1, y1, x2, y2), x2/y2 exclusive.
        crops: float32 [K, 1, crop_size, crop_size], normalised like ``load_split``.
    """
    import cv2

    h, w = grey.shape
    blur = cv2.GaussianBlur(grey, (5, 5), 0).astype(np.float32)
    background = cv2.medianBlur(grey, 51).astype(np.float32)
    diff = blur - background  # [H, W], ink > 0
    sigma = 1.4826 * float(np.median(np.abs(diff - np.median(diff))))
    thresh = max(6.0 * sigma, min_contrast)
    # a tall kernel joins the strokes of one digit (digits are taller than wide)
    mask = cv2.dilate((diff > thresh).astype(np.uint8), np.ones((7, 3), np.uint8))
    n, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    boxes, crops = [], []
    for k in range(1, n):
        x, y, bw, bh, area = (int(v) for v in stats[k])
        if area < min_area or bh < min_height:
            continue
        for x1, y1, x2, y2, peak in _ink_boxes(diff, x, y, x + bw, y + bh, ink_threshold):
            side = max(x2 - x1, y2 - y1)
            cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
            sx, sy = int(round(cx - side / 2)), int(round(cy - side / 2))
            crop = np.zeros((side, side), np.float32)  # background 0 outside the frame
            fx0, fy0, fx1, fy1 = max(sx, 0), max(sy, 0), min(sx + side, w), min(sy + side, h)
            crop[fy0 - sy : fy1 - sy, fx0 - sx : fx1 - sx] = diff[fy0:fy1, fx0:fx1]
            crop = np.clip(crop / max(peak, 1e-6), 0.0, 1.0)
            interp = cv2.INTER_AREA if side > crop_size else cv2.INTER_LINEAR
            crops.append(cv2.resize(crop, (crop_size, crop_size), interpolation=interp))
            boxes.append((x1, y1, x2, y2))
    if not boxes:
        return np.zeros((0, 4), np.int64), np.zeros((0, 1, crop_size, crop_size), np.float32)
    x = np.stack(crops)[:, None]  # [K, 1, S, S]
    return np.array(boxes, np.int64), ((x - np.float32(mean)) / np.float32(std)).astype(np.float32)


def _ink_boxes(diff: np.ndarray, x1: int, y1: int, x2: int, y2: int, ink_threshold: float,
               depth: int = 0) -> list[tuple[int, int, int, int, float]]:
    """Tight ink boxes (x1, y1, x2, y2, peak) inside a component's box of ``diff``.

    A box much wider than tall (digits are about 0.7 as wide as tall) is taken for digits side by
    side and split at the column with the least ink in its middle 40 %, at most twice.
    """
    region = diff[y1:y2, x1:x2]
    peak = float(region.max())
    ink = region > ink_threshold * peak
    ys, xs = np.nonzero(ink)
    if len(xs) == 0:
        return []
    bx1, by1, bx2, by2 = x1 + xs.min(), y1 + ys.min(), x1 + xs.max() + 1, y1 + ys.max() + 1
    bw, bh = bx2 - bx1, by2 - by1
    if depth >= 2 or bw <= 1.15 * bh:
        return [(int(bx1), int(by1), int(bx2), int(by2), peak)]
    cols = ink[:, bx1 - x1 : bx2 - x1].sum(axis=0)  # ink per column
    lo, hi = int(0.3 * bw), max(int(0.7 * bw), int(0.3 * bw) + 1)
    cut = bx1 + lo + int(np.argmin(cols[lo:hi]))
    return (_ink_boxes(diff, bx1, by1, cut, by2, ink_threshold, depth + 1)
            + _ink_boxes(diff, cut, by1, bx2, by2, ink_threshold, depth + 1))
