"""The detector's parts on their own: IoU, scoring, region proposals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from labdata.detector import box_iou, evaluate_detections, propose_regions
from labdata.video import VideoConfig, decode_frames, generate_clip, read_ground_truth

pytestmark = pytest.mark.data


def test_box_iou():
    a = np.array([[0, 0, 10, 10], [5, 5, 15, 15]])
    b = np.array([[0, 0, 10, 10], [20, 20, 30, 30]])
    iou = box_iou(a, b)
    assert iou.shape == (2, 2)
    assert iou[0, 0] == 1 and iou[0, 1] == 0 and iou[1, 1] == 0
    assert iou[1, 0] == pytest.approx(25 / 175)


def _pred(boxes, labels, scores=None):
    scores = scores or [1.0] * len(labels)
    return {"boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
            "labels": torch.tensor(labels), "scores": torch.tensor(scores)}


def test_evaluate_detections_counts():
    gt = [{"objects": [{"box": [0, 0, 10, 10], "label": 3, "visible": 1.0},
                       {"box": [50, 50, 60, 60], "label": 4, "visible": 1.0},
                       {"box": [80, 0, 90, 10], "label": 5, "visible": 0.2}]}]
    perfect = evaluate_detections([_pred([[0, 0, 10, 10], [50, 50, 60, 60]], [3, 4])], gt)
    assert perfect["f1"] == 1.0 and perfect["fp"] == 0
    wrong_label = evaluate_detections([_pred([[0, 0, 10, 10], [50, 50, 60, 60]], [3, 7])], gt)
    assert wrong_label["tp"] == 1 and wrong_label["fp"] == 1 and wrong_label["fn"] == 1
    assert wrong_label["localisation_recall"] == 1.0
    ignored = evaluate_detections([_pred([[0, 0, 10, 10], [50, 50, 60, 60], [80, 0, 90, 10]],
                                         [3, 4, 1])], gt)
    assert ignored["f1"] == 1.0, "a barely visible object is an ignore region"
    duplicate = evaluate_detections([_pred([[0, 0, 10, 10], [0, 0, 10, 10]], [3, 3], [0.9, 0.8])], gt)
    assert duplicate["tp"] == 1 and duplicate["fp"] == 1
    with pytest.raises(ValueError):
        evaluate_detections([], gt)


def test_proposals_find_separated_digits(tmp_path):
    cfg = VideoConfig(frames=20, width=160, height=120, num_objects=3, digit_size=28,
                      occlusion=False, seed=5)
    paths = generate_clip(cfg, tmp_path)
    gt = read_ground_truth(paths.ground_truth)
    found = total = 0
    for frame, info in zip(decode_frames(paths.video), gt["frames"]):
        boxes, crops = propose_regions(frame[:, :, 1])
        assert crops.shape == (len(boxes), 1, 32, 32) and crops.dtype == torch.float32
        objs = [o for o in info["objects"] if o["visible"] >= 0.9]
        if objs:
            iou = box_iou(np.array([o["box"] for o in objs]), boxes)
            found += int((iou.max(axis=1) >= 0.5).sum()) if len(boxes) else 0
            total += len(objs)
    assert total > 0 and found / total >= 0.95, f"found {found}/{total}"


def test_blank_frame_gives_no_proposals():
    rng = np.random.default_rng(0)
    frame = np.clip(40 + rng.normal(0, 8, (120, 160)), 0, 255).astype(np.uint8)
    boxes, crops = propose_regions(frame)
    assert boxes.shape == (0, 4) and crops.shape == (0, 1, 32, 32)


def test_proposals_stand_alone_with_the_data_constants():
    """``labdata/proposals.py`` is copied into edge bundles (no torch there): it imports nothing of labdata and
    its constants must be the data's."""
    import ast
    from pathlib import Path

    from labdata import proposals
    from labdata.digits import MEAN, STD
    from labdata.video import INK_THRESHOLD

    assert (proposals.DIGITS_MEAN, proposals.DIGITS_STD, proposals.INK_THRESHOLD) == (MEAN, STD, INK_THRESHOLD)
    tree = ast.parse(Path(proposals.__file__).read_text())
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {(n.module or "").split(".")[0] or "." for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert imported <= {"__future__", "numpy", "cv2"}, imported
