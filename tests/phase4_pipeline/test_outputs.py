"""Task 4.6: annotate_frame draws each box in its track's colour on a copy of the frame, with the counting line;
stage_summary says where the time went, one row per stage in pipeline order.

Frames are small uniform arrays and reports are made by hand, so the file runs in about a second; the plotting
helpers (written in full) are checked once, for a readable file.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from phase4_production.pipeline.plots import plot_capacity, plot_stage_times, write_summary

from .impl import p4p

pytestmark = pytest.mark.phase4_task6

H, W, GREY = 120, 160, 90


def frame(value: int = GREY) -> np.ndarray:
    return np.full((H, W, 3), value, np.uint8)


def result(boxes, track_ids, *, stream: str = "cam1", index: int = 7, labels=None, scores=None):
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    k = len(boxes)
    labels = np.arange(k, dtype=np.int64) % 10 if labels is None else np.asarray(labels, np.int64)
    scores = np.full(k, 0.9, np.float32) if scores is None else np.asarray(scores, np.float32)
    return p4p.FrameResult(stream, index, 0.0, boxes, labels, scores, np.asarray(track_ids, np.int64), 0.05)


def changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a != b).any(axis=-1)  # [H, W] bool


def side_colour(out: np.ndarray, img: np.ndarray, box, side: str) -> np.ndarray | None:
    """The most changed pixel within 1 px of a side of ``box`` (x2/y2 exclusive), at the side's middle."""
    x1, y1, x2, y2 = (int(v) for v in box)
    xm, ym = (x1 + x2) // 2, (y1 + y2) // 2
    if side in ("left", "right"):
        x = x1 if side == "left" else x2 - 1
        pts = [(ym, x + d) for d in (-1, 0, 1)]
    else:
        y = y1 if side == "top" else y2 - 1
        pts = [(y + d, xm) for d in (-1, 0, 1)]
    diffs = [np.abs(out[p].astype(int) - img[p].astype(int)).sum() for p in pts]
    best = int(np.argmax(diffs))
    return out[pts[best]].copy() if diffs[best] > 0 else None


def random_boxes(rng: np.random.Generator, k: int) -> np.ndarray:
    """k boxes of 20-30 px, below the corner label, left of the counting line, not touching each other."""
    boxes = []
    for i in range(k):
        x1 = 4 + 36 * (i % 2) + int(rng.integers(0, 4))
        y1 = 30 + 44 * (i // 2) + int(rng.integers(0, 4))
        boxes.append([x1, y1, x1 + int(rng.integers(20, 30)), y1 + int(rng.integers(20, 30))])
    return np.asarray(boxes, np.float32)


# ------------------------------------------------------------------------------------------------
# annotate_frame
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_each_box_outline_is_drawn_and_its_inside_left_visible(seed):
    rng = np.random.default_rng(seed)
    boxes = random_boxes(rng, 4)
    img = frame()
    out = p4p.annotate_frame(img, result(boxes, [3, 8, 11, 5]), line_x=0.5)
    assert out.shape == img.shape and out.dtype == np.uint8
    for box in boxes:
        for side in ("left", "right", "top", "bottom"):
            assert side_colour(out, img, box, side) is not None, f"the {side} side of box {box} was not drawn"
        cx, cy = int(box[0] + box[2]) // 2, int(box[1] + box[3]) // 2
        assert not changed(out, img)[cy - 2:cy + 3, cx - 2:cx + 3].any(), "the box's inside must stay visible"
    assert not changed(out, img)[H - 20:, W - 30:].any(), "pixels far from every drawing must be left alone"


def test_the_input_frame_is_never_modified():
    img = np.random.default_rng(4).integers(0, 256, (H, W, 3), dtype=np.uint8)
    before = img.copy()
    out = p4p.annotate_frame(img, result(random_boxes(np.random.default_rng(5), 3), [0, 1, 2]))
    np.testing.assert_array_equal(img, before)
    assert out is not img and not np.shares_memory(out, img)
    assert changed(out, img).any()


def test_a_track_keeps_its_colour_across_frames_and_ids_differ():
    box_a, box_b = [10, 40, 34, 66], [60, 70, 84, 96]
    img = frame()
    first = p4p.annotate_frame(img, result([box_a], [4], index=0))
    later = p4p.annotate_frame(img, result([box_b, box_a], [9, 4], index=1))   # moved, with company
    moved = p4p.annotate_frame(img, result([box_b], [4], index=2))
    c_first = side_colour(first, img, box_a, "left")
    np.testing.assert_array_equal(side_colour(later, img, box_a, "left"), c_first)
    np.testing.assert_array_equal(side_colour(moved, img, box_b, "left"), c_first)
    colours = set()
    for tid in range(6):
        out = p4p.annotate_frame(img, result([box_a], [tid]))
        colours.add(tuple(side_colour(out, img, box_a, "left")))
    assert len(colours) == 6, f"ids 0..5 must get different colours, got {sorted(colours)}"


def test_counting_line_and_corner_label():
    img = frame()
    x = int(round(0.75 * W))
    with_line = p4p.annotate_frame(img, result([], []), line_x=0.75)
    no_line = p4p.annotate_frame(img, result([], []), line_x=None)
    near = changed(with_line, img)[H // 3:, x - 1:x + 2].any(axis=1)
    assert near.mean() > 0.9, "the counting line must run down the frame at line_x * W"
    assert not changed(no_line, img)[H // 3:, x - 1:x + 2].any(), "line_x=None draws no line"
    corner = changed(no_line, img)[:H // 4, :W // 2]
    assert corner.any(), "the stream name and frame index go in the top-left corner"
    assert changed(no_line, img).sum() == corner.sum(), "with no detection and no line only the corner changes"
    other = p4p.annotate_frame(img, result([], [], stream="cam1", index=8), line_x=None)
    assert (other != no_line).any(), "the corner label must show the frame index"


def test_boxes_at_the_edges_and_outside_do_not_raise():
    img = frame()
    out = p4p.annotate_frame(img, result([[0, 0, 20, 20], [W - 15, H - 15, W + 10, H + 10], [-30, 5, -5, 25]],
                                         [1, 2, 3]))
    assert out.shape == img.shape and changed(out, img).any()


def test_bad_input_raises_value_error():
    with pytest.raises(ValueError):
        p4p.annotate_frame(frame().astype(np.float32), result([], []))
    with pytest.raises(ValueError):
        p4p.annotate_frame(frame()[:, :, 0], result([], []))
    bad = result([[10, 40, 30, 60], [50, 40, 70, 60]], [1, 2])
    bad.track_ids = np.array([1], np.int64)
    with pytest.raises(ValueError):
        p4p.annotate_frame(frame(), bad)


# ------------------------------------------------------------------------------------------------
# stage_summary
# ------------------------------------------------------------------------------------------------
def report(stages: dict, wall_s: float = 2.0):
    streams = {"cam1": p4p.StreamReport("cam1", 60, 60, {}, None, True)}
    return p4p.PipelineReport(streams=streams, stages=stages, wall_s=wall_s)


def stats(name, items, busy, threads, p50=1.0, p99=3.0):
    return p4p.StageStats(name, items, busy, p50, p99, threads)


def test_rows_follow_the_pipeline_order_with_the_right_arithmetic():
    given = {"track": stats("track", 120, 0.2, 1, 0.5, 1.5), "inference": stats("inference", 30, 1.2, 1, 40.0, 90.0),
             "decode": stats("decode", 120, 0.6, 4, 5.0, 9.0), "preprocess": stats("preprocess", 120, 2.0, 2, 16.0, 30.0)}
    rows = p4p.stage_summary(report(given, wall_s=2.0))
    assert [r["stage"] for r in rows] == list(p4p.STAGES)
    total = 0.2 + 1.2 + 0.6 + 2.0
    for r in rows:
        s = given[r["stage"]]
        assert (r["items"], r["threads"]) == (s.items, s.threads)
        assert r["busy_s"] == pytest.approx(s.busy_s) and r["p50_ms"] == pytest.approx(s.p50_ms)
        assert r["p99_ms"] == pytest.approx(s.p99_ms)
        assert r["throughput_per_s"] == pytest.approx(s.items / 2.0)
        assert r["utilisation"] == pytest.approx(s.busy_s / (2.0 * s.threads))
        assert r["share"] == pytest.approx(s.busy_s / total)
    assert sum(r["share"] for r in rows) == pytest.approx(1.0)
    by = {r["stage"]: r for r in rows}
    assert by["preprocess"]["utilisation"] == pytest.approx(0.5) and by["decode"]["utilisation"] == pytest.approx(0.075)


def test_utilisation_is_clipped_and_an_idle_run_has_no_share():
    busy = {n: stats(n, 10, 3.0, 1) for n in p4p.STAGES}     # 3 s busy in a 2 s run: clock edges
    assert all(r["utilisation"] == 1.0 for r in p4p.stage_summary(report(busy)))
    idle = {n: p4p.StageStats(n, 0, 0.0, math.nan, math.nan, 1) for n in p4p.STAGES}
    rows = p4p.stage_summary(report(idle))
    assert all(r["share"] == 0.0 and r["utilisation"] == 0.0 and r["throughput_per_s"] == 0.0 for r in rows)
    assert all(math.isnan(r["p50_ms"]) for r in rows)


@pytest.mark.parametrize("wall_s", [0.0, -1.0, math.nan])
def test_a_run_without_duration_raises(wall_s):
    with pytest.raises(ValueError):
        p4p.stage_summary(report({n: stats(n, 1, 0.1, 1) for n in p4p.STAGES}, wall_s=wall_s))


def test_a_missing_stage_raises():
    stages = {n: stats(n, 1, 0.1, 1) for n in p4p.STAGES if n != "inference"}
    with pytest.raises(ValueError, match="inference"):
        p4p.stage_summary(report(stages))


# ------------------------------------------------------------------------------------------------
# plots.py helpers (written in full): what the command line writes
# ------------------------------------------------------------------------------------------------
def test_summary_json_and_figures_are_written(tmp_path):
    stages = {n: stats(n, 10, 0.5, 1) for n in p4p.STAGES}
    stages["track"] = p4p.StageStats("track", 0, 0.0, math.nan, math.nan, 1)
    rep = report(stages)
    rows = p4p.stage_summary(rep)
    data = json.loads(write_summary(rep, rows, tmp_path / "summary.json", extra={"impl": "x"}).read_text())
    assert data["frames_out"] == 60 and data["impl"] == "x"
    assert [r["stage"] for r in data["stage_summary"]] == list(p4p.STAGES)
    assert data["stage_summary"][-1]["p50_ms"] is None           # NaN is written as null
    png = plot_stage_times(rows, tmp_path / "stages.png").read_bytes()
    assert png.startswith(b"\x89PNG")
    points = [{"streams": n, "p99_ms": 20.0 * n, "drop_pct": max(0.0, 10.0 * (n - 4)), "sustained": n <= 4}
              for n in (1, 2, 4, 8)]
    assert plot_capacity(points, tmp_path / "cap.png", latency_bound_ms=100.0).read_bytes().startswith(b"\x89PNG")
    with pytest.raises(ValueError):
        plot_capacity([], tmp_path / "x.png", latency_bound_ms=100.0)
