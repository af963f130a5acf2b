"""How the grader scores a pipeline's detections and tracks against a generated clip's ground truth.

The grader's own code (never the learner's): it takes what the learner's pipeline handed to ``on_result``,
by frame index, and the clip's ground truth (``labdata.video.read_ground_truth(...)["frames"]``).

* :func:`detection_scores`: precision, recall, F1 with ``labdata.detector.evaluate_detections``.
* :func:`tracking_scores`: MOTA, IDF1, identity switches with ``motmetrics``. A hypothesis matches a
  ground-truth object at IoU >= ``iou_min``. Objects less than ``min_visible`` visible (mostly hidden behind
  another digit, or mostly outside the frame) are *ignored*, as the MOT benchmarks treat distractors: a
  hypothesis that the one-to-one assignment pairs with an ignored object is removed before accumulating (it
  is neither a false positive nor a match), and the ignored objects are removed too (missing one is no miss).
* :func:`gt_events`: what a perfect event detector would report on the clip (line crossings, tracks), for
  sanity checks of the learner's events.

A frame with no result (dropped by the overload policy, or never answered) counts as a frame where the
pipeline found nothing: its objects are misses.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from labdata.detector import box_iou, evaluate_detections

__all__ = ["detection_scores", "tracking_scores", "gt_events"]


def _frame_indices(results_by_index: Mapping[int, Any], gt_frames: Sequence[dict[str, Any]]) -> list[int]:
    """The ground truth's frame indices; ValueError when a result names a frame the clip does not have."""
    indices = [int(f["index"]) for f in gt_frames]
    unknown = sorted(set(int(i) for i in results_by_index) - set(indices))
    if unknown:
        raise ValueError(f"results for frames the clip does not have: {unknown[:10]}")
    return indices


def _boxes(boxes: Any, what: str) -> np.ndarray:
    a = np.asarray(boxes, np.float64)
    if a.size == 0:
        return np.zeros((0, 4))
    if a.ndim != 2 or a.shape[1] != 4 or not np.isfinite(a).all():
        raise ValueError(f"{what}: boxes must be a finite [K, 4] array, got shape {a.shape}")
    return a


def detection_scores(results_by_index: Mapping[int, tuple[Any, Any, Any]], gt_frames: Sequence[dict[str, Any]], *,
                     iou_threshold: float = 0.5, min_visible: float = 0.5) -> dict[str, float]:
    """Detection quality over a clip.

    Args:
        results_by_index: frame index -> ``(boxes [K, 4], labels [K], scores [K])``; a frame missing here is
            scored as an empty prediction.
        gt_frames: the clip's ground-truth ``frames`` list.
        iou_threshold, min_visible: as in ``labdata.detector.evaluate_detections``.

    Returns:
        ``evaluate_detections``'s dict (``precision``, ``recall``, ``f1``, ``tp``, ``fp``, ``fn``,
        ``localisation_recall``) plus ``frames`` (in the clip) and ``frames_missing`` (without a result).

    Raises:
        ValueError: a result for a frame the clip does not have, or arrays of the wrong shape.
    """
    indices = _frame_indices(results_by_index, gt_frames)
    predictions = []
    for i in indices:
        if i not in results_by_index:
            predictions.append({"boxes": np.zeros((0, 4)), "labels": np.zeros(0, np.int64), "scores": np.zeros(0)})
            continue
        boxes, labels, scores = results_by_index[i]
        b = _boxes(boxes, f"frame {i}")
        labels, scores = np.asarray(labels).reshape(-1), np.asarray(scores, np.float64).reshape(-1)
        if len(labels) != len(b) or len(scores) != len(b):
            raise ValueError(f"frame {i}: {len(b)} boxes, {len(labels)} labels, {len(scores)} scores")
        predictions.append({"boxes": b, "labels": labels, "scores": scores})
    out: dict[str, float] = dict(evaluate_detections(predictions, gt_frames, iou_threshold=iou_threshold,
                                                     min_visible=min_visible))
    out["frames"] = len(indices)
    out["frames_missing"] = sum(1 for i in indices if i not in results_by_index)
    return out


def _frame_pairs(hyp: np.ndarray, gt: np.ndarray, iou_min: float) -> tuple[np.ndarray, np.ndarray]:
    """IoU [H, G] and the one-to-one assignment (maximum total IoU) as a [H] array: the object index
    each hypothesis is paired with at IoU >= iou_min, or -1."""
    iou = box_iou(hyp, gt)
    paired = np.full(len(hyp), -1)
    if len(hyp) and len(gt):
        rows, cols = linear_sum_assignment(-iou)
        ok = iou[rows, cols] >= iou_min
        paired[rows[ok]] = cols[ok]
    return iou, paired


def tracking_scores(results_by_index: Mapping[int, tuple[Any, Any]], gt_frames: Sequence[dict[str, Any]], *,
                    iou_min: float = 0.5, min_visible: float = 0.5) -> dict[str, float]:
    """Multi-object tracking quality over a clip, with ``motmetrics``.

    Args:
        results_by_index: frame index -> ``(boxes [K, 4], track_ids [K])``; a frame missing here has no
            hypotheses (its objects are misses).
        gt_frames: the clip's ground-truth ``frames`` list (objects with ``track_id``, ``box``, ``visible``).
        iou_min: smallest IoU for a hypothesis to match an object (motmetrics distance ``1 - IoU``, at most
            ``1 - iou_min``).
        min_visible: objects less visible than this are ignored (see the module docstring).

    Returns:
        ``mota``, ``idf1`` (fractions; MOTA can be negative), ``id_switches``, ``id_switches_per_100_frames``,
        ``fragmentations``, ``num_frames``, and ``false_positives``, ``misses``, ``objects`` (ground-truth
        object-frames that count), ``hypotheses_ignored`` (removed because they matched an ignored object).

    Raises:
        ValueError: a result for a frame the clip does not have, arrays of the wrong shape or length, or a
            track id that repeats within one frame.
    """
    import motmetrics as mm

    indices = _frame_indices(results_by_index, gt_frames)
    acc = mm.MOTAccumulator(auto_id=True)
    ignored_hyps = 0
    for i, frame in zip(indices, gt_frames):
        boxes, ids = results_by_index.get(i, (np.zeros((0, 4)), np.zeros(0, np.int64)))
        hyp = _boxes(boxes, f"frame {i}")
        hyp_ids = np.asarray(ids).reshape(-1).astype(np.int64)
        if len(hyp_ids) != len(hyp):
            raise ValueError(f"frame {i}: {len(hyp)} boxes but {len(hyp_ids)} track ids")
        if len(set(hyp_ids.tolist())) != len(hyp_ids):
            raise ValueError(f"frame {i}: a track id repeats within the frame: {hyp_ids.tolist()}")
        objs = frame["objects"]
        gt = np.array([o["box"] for o in objs], np.float64).reshape(-1, 4)
        care = np.array([o["visible"] >= min_visible for o in objs], bool)
        _, paired = _frame_pairs(hyp, gt, iou_min)
        keep = np.array([p < 0 or care[p] for p in paired], bool)   # drop hypotheses paired with ignored objects
        ignored_hyps += int((~keep).sum())
        hyp, hyp_ids, gt = hyp[keep], hyp_ids[keep], gt[care]
        gt_ids = [int(o["track_id"]) for o, c in zip(objs, care) if c]
        dist = 1.0 - box_iou(gt, hyp)                                # [G, H]
        dist[dist > 1.0 - iou_min + 1e-12] = np.nan                 # NaN: may not be paired
        acc.update(gt_ids, hyp_ids.tolist(), dist)
    mh = mm.metrics.create()
    names = ["mota", "idf1", "num_switches", "num_fragmentations", "num_frames", "num_false_positives",
             "num_misses", "num_objects"]
    s = mh.compute(acc, metrics=names, name="clip").iloc[0]
    frames = int(s["num_frames"])
    return {"mota": float(s["mota"]), "idf1": float(s["idf1"]), "id_switches": int(s["num_switches"]),
            "id_switches_per_100_frames": 100.0 * int(s["num_switches"]) / max(frames, 1),
            "fragmentations": int(s["num_fragmentations"]), "num_frames": frames,
            "false_positives": int(s["num_false_positives"]), "misses": int(s["num_misses"]),
            "objects": int(s["num_objects"]), "hypotheses_ignored": ignored_hyps}


def gt_events(gt_frames: Sequence[dict[str, Any]], width: int, line_x: float = 0.5, *,
              min_visible: float = 0.0) -> dict[str, int]:
    """What the ground truth says happened: tracks and counting-line crossings.

    A crossing is a change of side of the box centre's x against ``line_x * width`` (left: x < line) between
    two consecutive sightings of the same object (sightings: frames where it is at least ``min_visible``
    visible), exactly as ``EventDetector`` counts them.

    Returns:
        ``tracks`` (objects seen at least once), ``crossings``, ``left_to_right``, ``right_to_left``.
    """
    line = float(line_x) * float(width)
    last_left: dict[int, bool] = {}
    ltr = rtl = 0
    for frame in gt_frames:
        for o in frame["objects"]:
            if o["visible"] < min_visible:
                continue
            tid = int(o["track_id"])
            left = (o["box"][0] + o["box"][2]) / 2 < line
            if tid in last_left and last_left[tid] != left:
                ltr += int(last_left[tid])
                rtl += int(not last_left[tid])
            last_left[tid] = left
    return {"tracks": len(last_left), "crossings": ltr + rtl, "left_to_right": ltr, "right_to_left": rtl}
