"""Task 4.3: optimal matching, a tracker that keeps each digit's id, events a person can rely on, and the grader's
tracking score (graders/phase4/pipeline/scoring.py) on trackers whose answer is known.

Everything is synthetic boxes except the last tests, which render short clips in memory (no video file).
"""
from __future__ import annotations

import numpy as np
import pytest

from graders.phase4.pipeline.scoring import detection_scores, gt_events, tracking_scores
from labdata.video import VideoConfig, render_frames

from .impl import p4p

pytestmark = pytest.mark.phase4_task3


def box(x: float, y: float = 20.0, w: float = 20.0, h: float = 28.0) -> list[float]:
    return [x, y, x + w, y + h]


def frame(*boxes: list[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(boxes [K, 4], labels [K], scores [K]) of one frame."""
    b = np.array(boxes, np.float32).reshape(-1, 4)
    return b, np.zeros(len(b), np.int64), np.ones(len(b), np.float32)


def track(tracker, f: int, *boxes: list[float]) -> list[int]:
    ids = tracker.update(f, *frame(*boxes))
    assert isinstance(ids, np.ndarray) and ids.dtype == np.int64 and ids.shape == (len(boxes),)
    return ids.tolist()


# ---------------------------------------------------------------------------------------------------
# match_detections
# ---------------------------------------------------------------------------------------------------
def test_matching_is_optimal_where_greedy_is_not():
    tracks = np.array([box(0), box(3)], float)      # A, B
    dets = np.array([box(1), box(-4)], float)       # x overlaps both (A best), y overlaps A only enough
    # greedy would take (A, x) at IoU 0.82 first, leaving (B, y) at 0.18 < iou_min: one pair.
    # the best assignment is (A, y) 0.43 + (B, x) 0.67: two pairs.
    assert p4p.match_detections(tracks, dets, 0.3) == [(0, 1), (1, 0)]


def test_matching_respects_iou_min_and_is_sorted_by_track():
    tracks = np.array([box(100), box(0), box(50)], float)
    dets = np.array([box(0), box(56), box(100)], float)     # IoU with track 2: 14 / 26 = 0.54
    assert p4p.match_detections(tracks, dets, 0.3) == [(0, 2), (1, 0), (2, 1)]
    assert p4p.match_detections(tracks, dets, 0.6) == [(0, 2), (1, 0)]
    assert p4p.match_detections(tracks, dets[:1], 0.3) == [(1, 0)]


def test_matching_empty_and_bad_inputs():
    assert p4p.match_detections(np.zeros((0, 4)), np.array([box(0)]), 0.3) == []
    assert p4p.match_detections(np.array([box(0)]), np.zeros((0, 4)), 0.3) == []
    with pytest.raises(ValueError):
        p4p.match_detections(np.zeros((2, 3)), np.array([box(0)]), 0.3)
    with pytest.raises(ValueError):
        p4p.match_detections(np.array([box(0)]), np.array([box(0)]), 1.5)


# ---------------------------------------------------------------------------------------------------
# IouTracker
# ---------------------------------------------------------------------------------------------------
def test_a_moving_box_keeps_its_id():
    t = p4p.IouTracker()
    assert [track(t, f, box(10 + 6 * f)) for f in range(30)] == [[0]] * 30


def test_id_kept_across_a_gap_and_skipped_frame_indices():
    t = p4p.IouTracker(max_age=5)
    for f in range(10):
        assert track(t, f, box(10 + 5 * f)) == [0]
    assert track(t, 10) == [] and track(t, 11) == []        # missed twice
    assert track(t, 12, box(70)) == [0]                      # back where its motion says
    assert track(t, 16, box(90)) == [0]                      # frames 13-15 dropped: index skips
    assert track(t, 17, box(95)) == [0]


def test_two_digits_crossing_paths_keep_their_ids():
    """A moves right, B moves left on the same row; while they overlap the detector sees one merged box."""
    t = p4p.IouTracker()
    seen = {}
    for f in range(40):
        xa, xb = 10 + 5 * f, 200 - 5 * f
        if abs(xa - xb) < 25:
            ids = track(t, f, [min(xa, xb), 20, max(xa, xb) + 20, 48])
        else:
            ids = track(t, f, box(xa), box(xb))
            seen.setdefault("before" if xa < xb else "after", []).append(ids)
    assert seen["before"][0] == [0, 1]
    assert all(ids == [0, 1] for ids in seen["before"] + seen["after"]), seen


def test_a_new_object_gets_a_new_id_and_ids_never_repeat():
    t = p4p.IouTracker()
    assert track(t, 0, box(10)) == [0]
    assert track(t, 1, box(12), box(150, 100)) == [0, 1]
    assert track(t, 2, box(250, 150), box(14), box(152, 100)) == [2, 0, 1]
    assert sorted(tr.track_id for tr in t.open_tracks) == [0, 1, 2]


def test_a_track_closes_after_max_age_unseen_frames():
    t = p4p.IouTracker(max_age=3)
    for f in range(5):
        track(t, f, box(10))
    for f in (5, 6, 7):
        track(t, f)
    assert [tr.track_id for tr in t.open_tracks] == [0]      # unseen 3 frames: still open
    assert track(t, 8, box(10)) == [0]                       # and still matched
    for f in (9, 10, 11, 12):
        track(t, f)
    assert t.open_tracks == ()                               # unseen 4 > 3 frames: closed
    assert track(t, 13, box(10)) == [1]                      # the same place later is a new track


def test_open_tracks_is_a_copy():
    t = p4p.IouTracker()
    track(t, 0, box(10))
    t.open_tracks[0].box[:] = 500
    assert track(t, 1, box(11)) == [0]


@pytest.mark.parametrize("args", [
    (0, np.zeros((1, 3)), np.zeros(1, np.int64), np.ones(1)),        # boxes not [K, 4]
    (0, np.array([box(0)]), np.zeros(2, np.int64), np.ones(1)),      # labels of another length
    (0, np.array([box(0)]), np.zeros(1, np.int64), np.ones(3)),      # scores of another length
    (0, np.array([[0, 0, np.nan, 5]]), np.zeros(1, np.int64), np.ones(1)),
    (-1, np.array([box(0)]), np.zeros(1, np.int64), np.ones(1)),     # negative frame index
])
def test_tracker_rejects_bad_inputs(args):
    with pytest.raises(ValueError):
        p4p.IouTracker().update(*args)


def test_tracker_rejects_frames_out_of_order():
    t = p4p.IouTracker()
    track(t, 5, box(0))
    with pytest.raises(ValueError):
        t.update(5, *frame(box(0)))
    with pytest.raises(ValueError):
        t.update(3, *frame(box(0)))


# ---------------------------------------------------------------------------------------------------
# EventDetector
# ---------------------------------------------------------------------------------------------------
def events_of(det, f, ids=(), xs=(), labels=()):
    b = np.array([box(x) for x in xs], float).reshape(-1, 4)
    return [(e.type, e.frame, e.track_id, e.label, e.direction)
            for e in det.update(f, np.array(ids, np.int64), b, np.array(labels, np.int64))]


def test_enter_cross_and_leave_with_directions():
    det = p4p.EventDetector("cam", width=200, line_x=0.5, max_age=3)    # line at x = 100
    got = []
    for f in range(12):      # track 0: centre 40 -> 150 (left to right); track 1: centre 155 -> 45
        got += events_of(det, f, ids=[0, 1], xs=[30 + 10 * f, 145 - 10 * f], labels=[3, 8])
    assert got == [("enter", 0, 0, 3, None), ("enter", 0, 1, 8, None),
                   ("cross", 6, 0, 3, "left_to_right"), ("cross", 6, 1, 8, "right_to_left")]
    assert [(e.type, e.stream, e.frame, e.track_id, e.direction) for e in det.finish()] == [
        ("leave", "cam", 11, 0, None), ("leave", "cam", 11, 1, None)]
    assert det.finish() == []


def test_leave_after_max_age_with_the_last_frame_seen_and_leaves_first():
    det = p4p.EventDetector("cam", width=200, max_age=3)
    for f in range(4):
        events_of(det, f, ids=[0], xs=[20], labels=[5])
    assert events_of(det, 6) == []                                        # unseen 3 frames (4-6): not yet
    got = events_of(det, 7, ids=[1], xs=[20], labels=[2])                 # 4 frames: gone
    assert got == [("leave", 3, 0, 5, None), ("enter", 7, 1, 2, None)]
    assert events_of(det, 8, ids=[0], xs=[20], labels=[5]) == [("enter", 8, 0, 5, None)]   # a new sighting


def test_event_label_is_the_most_frequent_so_far():
    det = p4p.EventDetector("cam", width=100, max_age=2)
    assert events_of(det, 0, [4], [10], [1]) == [("enter", 0, 4, 1, None)]
    for f in (1, 2, 3):
        assert events_of(det, f, [4], [10], [7]) == []
    assert events_of(det, 4, [4], [80], [1]) == [("cross", 4, 4, 7, "left_to_right")]    # 7 x3 beats 1 x2
    events_of(det, 5, [4], [80], [1])
    assert [e.label for e in det.finish()] == [1]                                        # 1 x3, 7 x3: the smaller


def test_event_detector_rejects_bad_inputs():
    det = p4p.EventDetector("cam", width=100)
    b = np.array([box(0), box(50)], float)
    with pytest.raises(ValueError):
        det.update(0, np.array([0, 1, 2]), b, np.array([1, 2]))           # ids of another length
    with pytest.raises(ValueError):
        det.update(0, np.array([3, 3]), b, np.array([1, 2]))              # a repeated id
    with pytest.raises(ValueError):
        det.update(0, np.array([0, 1]), b[:, :3], np.array([1, 2]))       # boxes not [K, 4]
    det.update(4, np.array([0]), b[:1], np.array([1]))
    with pytest.raises(ValueError):
        det.update(4, np.array([0]), b[:1], np.array([1]))                # frame not after the last


# ---------------------------------------------------------------------------------------------------
# On rendered clips, and the grader's score
# ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def clips():
    """Ground-truth frames of three short rendered clips (bouncing, entering/leaving, crossing digits)."""
    return [[{"index": i, "objects": objs} for i, (_, objs) in enumerate(render_frames(VideoConfig(frames=90, fps=30,
                                                                                                   seed=s)))]
            for s in (1, 2, 3)]


def gt_boxes(fr, min_visible=0.0):
    objs = [o for o in fr["objects"] if o["visible"] >= min_visible]
    return (np.array([o["box"] for o in objs], np.float64).reshape(-1, 4),
            np.array([o["track_id"] for o in objs], np.int64), np.array([o["label"] for o in objs], np.int64))


def test_tracker_fed_ground_truth_boxes_follows_every_digit(clips):
    for frames in clips:
        t, results = p4p.IouTracker(), {}
        for fr in frames:
            b, _, labels = gt_boxes(fr, min_visible=0.2)      # what a good detector would see
            results[fr["index"]] = (b, t.update(fr["index"], b, labels, np.ones(len(b))))
        s = tracking_scores(results, frames)
        assert s["idf1"] >= 0.95 and s["mota"] >= 0.95, s


def test_score_of_a_perfect_tracker_is_one(clips):
    frames = clips[0]
    results = {fr["index"]: gt_boxes(fr)[:2] for fr in frames}             # hidden objects too: ignored
    s = tracking_scores(results, frames)
    assert s["mota"] == pytest.approx(1.0) and s["idf1"] == pytest.approx(1.0), s
    assert s["id_switches"] == 0 and s["num_frames"] == len(frames)
    d = detection_scores({fr["index"]: (gt_boxes(fr)[0], gt_boxes(fr)[2], np.ones(len(fr["objects"])))
                          for fr in frames}, frames)
    assert d["f1"] == pytest.approx(1.0) and d["frames_missing"] == 0


def test_score_of_a_new_id_for_every_detection_is_low(clips):
    frames, results, n = clips[0], {}, 0
    for fr in frames:
        b = gt_boxes(fr)[0]
        results[fr["index"]] = (b, np.arange(n, n + len(b)))
        n += len(b)
    s = tracking_scores(results, frames)
    assert s["idf1"] < 0.1 and s["id_switches_per_100_frames"] > 100, s


def test_score_counts_missing_frames_as_misses_and_rejects_bad_results(clips):
    frames = clips[0]
    half = {fr["index"]: gt_boxes(fr)[:2] for fr in frames if fr["index"] % 2 == 0}
    s = tracking_scores(half, frames)
    assert 0.3 < s["mota"] < 0.7 and s["misses"] > 0, s
    with pytest.raises(ValueError):
        tracking_scores({len(frames) + 5: (np.zeros((0, 4)), np.zeros(0))}, frames)
    b = np.array([box(0), box(50)], float)
    with pytest.raises(ValueError):
        tracking_scores({0: (b, np.array([7, 7]))}, frames)                 # an id twice in one frame


def test_ground_truth_events(clips):
    ev = gt_events(clips[0], width=320)
    assert ev["tracks"] == 4 and ev["crossings"] == ev["left_to_right"] + ev["right_to_left"] >= 1, ev
