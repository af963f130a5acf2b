# REFERENCE SOLUTION: excluded from the learner release (make release).
"""Task 4.6: what a person looks at: annotated frames, and where the time went.

A pipeline that only returns numbers is hard to trust. The command line (``python -m
phase4_production.pipeline run ...``, ``cli.py``) writes one annotated video per stream, drawn by
:func:`annotate_frame` (each track's box in a colour of its own, its id, digit and score, the counting line,
the stream and frame in a corner), and a per-stage table from :func:`stage_summary`: how many items each
stage finished, how busy its threads were, and what share of all the work it did. The busiest stage with
the highest utilisation is the one to speed up (or give more threads) first.

Guide: SYSTEM_ARCHITECTURE_GUIDE.md#task-46-a-command-a-person-would-run
"""
from __future__ import annotations

import colorsys
import math
from typing import Any

import numpy as np

from ..types import STAGES, FrameResult, PipelineReport

__all__ = ["annotate_frame", "stage_summary", "track_colour", "LINE_COLOUR"]

#: BGR colour of the counting line (full magenta; track colours are a little less saturated).
LINE_COLOUR = (255, 0, 255)
_FONT_SCALE = 0.35


def track_colour(track_id: int) -> tuple[int, int, int]:
    """The BGR colour of a track: a function of its id alone, so the same object keeps its colour in every
    frame (helper, written in full).

    Hues are spread by the golden ratio, so consecutive ids get clearly different colours; saturation and
    value stay high so a box shows on the grey frames of ``labdata.video``.

    Args:
        track_id: the track's id (>= 0).

    Returns:
        ``(b, g, r)``, ints 0..255.
    """
    hue = (int(track_id) * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 1.0)
    return int(round(b * 255)), int(round(g * 255)), int(round(r * 255))


def _text(out: np.ndarray, text: str, x: int, y: int, colour: tuple[int, int, int]) -> None:
    """Draw ``text`` with its baseline at (x, y) on a filled box of ``colour``, in black (helper, written in full)."""
    import cv2

    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, _FONT_SCALE, 1)
    cv2.rectangle(out, (x, y - h - 1), (x + w + 1, y + base - 1), colour, -1)
    cv2.putText(out, text, (x + 1, y - 1), cv2.FONT_HERSHEY_SIMPLEX, _FONT_SCALE, (0, 0, 0), 1, cv2.LINE_AA)


# ---------------------------------------------------------------------------------------------------
# ## Task 4.6: a command a person would run
# ---------------------------------------------------------------------------------------------------
def annotate_frame(image: np.ndarray, result: FrameResult, *, line_x: float | None = 0.5) -> np.ndarray:
    """Draw one frame's detections, tracks and counting line on a copy of the frame.

    Each detection ``k`` gets its box outline (not filled: the digit must stay visible) in
    ``track_colour(result.track_ids[k])``, with a small label ``"<track id>:<digit> <score>"`` (e.g.
    ``"3:7 0.98"``) just above the box (inside it when the box touches the top edge). The counting line is a
    vertical line at ``x = line_x * W`` in :data:`LINE_COLOUR`; the stream name and frame index
    (``"cam1 #42"``) go in the top-left corner.

    Args:
        image: the frame, uint8 [H, W, 3] BGR (``FrameResult.image`` when the pipeline keeps images). Never
            modified.
        result: the frame's :class:`FrameResult`: ``boxes`` float32 [K, 4] pixels (x1, y1, x2, y2), x2/y2
            exclusive; ``labels`` int64 [K]; ``scores`` float32 [K] (0..1); ``track_ids`` int64 [K]. K may be 0.
        line_x: the counting line as a fraction of the frame width (0..1), as in ``PipelineConfig.line_x``;
            None draws no line.

    Returns:
        A new uint8 [H, W, 3] array (same shape and dtype as ``image``). Boxes that reach outside the frame are
        clipped to it.

    Raises:
        ValueError: ``image`` is not a uint8 [H, W, 3] array, ``result``'s arrays disagree in length, or
            ``line_x`` is outside 0..1.

    Tolerance the grader applies (p4.pipeline.cli): on a frame of the grade's clip with two boxes, at least half
    the pixels of each box's outline (its four sides, x2/y2 exclusive) changed, the input unchanged, shape and
    dtype kept; the report shows your annotated frame.

    Guide: SYSTEM_ARCHITECTURE_GUIDE.md#task-46-a-command-a-person-would-run
    """
    # BEGIN SOLUTION
    import cv2

    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected a uint8 [H, W, 3] BGR frame, got "
                         f"{getattr(image, 'dtype', type(image).__name__)} {getattr(image, 'shape', '')}")
    boxes = np.asarray(result.boxes, np.float64).reshape(-1, 4)
    k = len(boxes)
    if not (len(result.labels) == len(result.scores) == len(result.track_ids) == k):
        raise ValueError(f"result has {k} boxes, {len(result.labels)} labels, {len(result.scores)} scores and "
                         f"{len(result.track_ids)} track ids: they must agree")
    if line_x is not None and not 0.0 <= line_x <= 1.0:
        raise ValueError(f"line_x must be in 0..1 or None, got {line_x!r}")
    out = np.ascontiguousarray(image.copy())
    h, w = out.shape[:2]
    if line_x is not None:
        x = min(int(round(line_x * w)), w - 1)
        cv2.line(out, (x, 0), (x, h - 1), LINE_COLOUR, 1)
    for box, label, score, tid in zip(boxes, result.labels, result.scores, result.track_ids):
        if not np.isfinite(box).all():
            continue
        x1, y1 = int(np.clip(round(box[0]), 0, w - 1)), int(np.clip(round(box[1]), 0, h - 1))
        x2, y2 = int(np.clip(round(box[2]) - 1, 0, w - 1)), int(np.clip(round(box[3]) - 1, 0, h - 1))
        colour = track_colour(int(tid))
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, 1)
        (_, th), _ = cv2.getTextSize("0", cv2.FONT_HERSHEY_SIMPLEX, _FONT_SCALE, 1)
        ty = y1 - 2 if y1 - 2 - th - 1 >= 0 else y1 + th + 2  # above the box, or inside it at the top edge
        _text(out, f"{int(tid)}:{int(label)} {float(score):.2f}", x1, ty, colour)
    (_, th), _ = cv2.getTextSize("0", cv2.FONT_HERSHEY_SIMPLEX, _FONT_SCALE, 1)
    _text(out, f"{result.stream} #{int(result.index)}", 2, th + 3, (255, 255, 255))
    return out
    # END SOLUTION
    """ # BEGIN PROMPT
    # Step 1: check image is uint8 [H, W, 3] and that boxes, labels, scores and track_ids have the same length
    #         (ValueError otherwise); work on out = image.copy() so the caller's frame stays as it was.
    # Step 2: line_x not None: cv2.line a vertical line at x = min(round(line_x * W), W - 1) in LINE_COLOUR.
    # Step 3: for each detection: round and clip the box to the frame (x2/y2 are exclusive: the outline's last
    #         pixel is x2 - 1); cv2.rectangle(out, (x1, y1), (x2 - 1, y2 - 1), track_colour(track_id), 1).
    # Step 4: its label f"{track_id}:{label} {score:.2f}" just above the box (cv2.putText, FONT_HERSHEY_SIMPLEX,
    #         scale ~0.35; inside the box when it touches the top); f"{stream} #{index}" in the top-left corner.
    raise NotImplementedError("Task 4.6: see SYSTEM_ARCHITECTURE_GUIDE.md#task-46-a-command-a-person-would-run")
    """  # END PROMPT


def stage_summary(report: PipelineReport) -> list[dict[str, Any]]:
    """Where the time went: one row per stage, in the order a frame goes through them.

    Args:
        report: a finished run's :class:`PipelineReport`; ``report.stages`` must hold a :class:`StageStats` for
            every name in :data:`STAGES` (``wall_s`` in seconds, ``busy_s`` seconds of all the stage's threads
            together, ``p50_ms``/``p99_ms`` per item in ms, NaN for a stage that finished nothing).

    Returns:
        One dict per stage, in :data:`STAGES` order (``decode``, ``preprocess``, ``inference``, ``track``), with:
        ``stage`` (its name), ``items``, ``threads``, ``busy_s``, ``p50_ms``, ``p99_ms`` (copied from its
        StageStats), ``throughput_per_s`` (items / ``report.wall_s``), ``utilisation`` (``busy_s /
        (wall_s * threads)``: the fraction of its threads' time spent working, clipped to 0..1; 0 for a stage
        with no thread) and ``share`` (its ``busy_s`` over the ``busy_s`` of all stages together, 0..1, the
        shares summing to 1; every share 0 when no stage was busy at all).

    Raises:
        ValueError: ``report.wall_s`` is not a finite number > 0, or a stage of :data:`STAGES` is missing from
            ``report.stages``.

    Tolerance the grader applies (p4.pipeline.cli): on a report with random figures (stages given out of order),
    rows in STAGES order, ``items``, ``busy_s``, ``throughput_per_s``, ``utilisation`` and ``share`` within 1e-9
    (relative) of the grader's arithmetic, and ValueError for ``wall_s = 0``.

    Guide: SYSTEM_ARCHITECTURE_GUIDE.md#task-46-a-command-a-person-would-run
    """
    # BEGIN SOLUTION
    wall = float(report.wall_s)
    if not math.isfinite(wall) or wall <= 0:
        raise ValueError(f"report.wall_s must be a finite number of seconds > 0, got {report.wall_s!r}")
    missing = [name for name in STAGES if name not in report.stages]
    if missing:
        raise ValueError(f"report.stages lacks {missing} (it must hold every stage of {STAGES})")
    stats = [report.stages[name] for name in STAGES]
    total_busy = sum(float(s.busy_s) for s in stats)
    rows = []
    for name, s in zip(STAGES, stats):
        busy, threads = float(s.busy_s), int(s.threads)
        rows.append({
            "stage": name, "items": int(s.items), "threads": threads, "busy_s": busy,
            "p50_ms": float(s.p50_ms), "p99_ms": float(s.p99_ms),
            "throughput_per_s": int(s.items) / wall,
            "utilisation": min(max(busy / (wall * threads), 0.0), 1.0) if threads > 0 else 0.0,
            "share": busy / total_busy if total_busy > 0 else 0.0,
        })
    return rows
    # END SOLUTION
    """ # BEGIN PROMPT
    # Step 1: wall = report.wall_s; ValueError unless it is finite and > 0. ValueError when a name of STAGES is
    #         not a key of report.stages (say which).
    # Step 2: total_busy = the sum of busy_s over the four stages.
    # Step 3: for each name in STAGES order, s = report.stages[name]: a dict with stage, items, threads, busy_s,
    #         p50_ms, p99_ms, throughput_per_s = items / wall, utilisation = busy_s / (wall * threads) clipped to
    #         0..1 (0 when threads == 0), share = busy_s / total_busy (0 when total_busy == 0).
    raise NotImplementedError("Task 4.6: see SYSTEM_ARCHITECTURE_GUIDE.md#task-46-a-command-a-person-would-run")
    """  # END PROMPT
