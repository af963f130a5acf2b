"""Synthetic clips: the file decodes to what the ground truth says, deterministically."""

from __future__ import annotations

import json

import numpy as np
import pytest

from labdata.video import (
    CODECS,
    VideoConfig,
    VideoDecodeError,
    cached_clip,
    decode_frames,
    generate_clip,
    read_ground_truth,
    read_video,
)

pytestmark = pytest.mark.data

SMALL = dict(frames=30, fps=10.0, width=160, height=120, num_objects=3, digit_size=24, seed=7)


@pytest.mark.parametrize("codec", sorted(CODECS))
def test_clip_decodes_to_ground_truth_frame_count_and_size(tmp_path, codec):
    cfg = VideoConfig(**SMALL, codec=codec)
    paths = generate_clip(cfg, tmp_path)
    assert paths.video.suffix == CODECS[codec]
    gt = read_ground_truth(paths.ground_truth)
    frames = read_video(paths.video)
    assert gt["frame_count"] == cfg.frames == len(gt["frames"]) == len(frames)
    assert frames.shape == (gt["frame_count"], gt["height"], gt["width"], 3)
    assert frames.dtype == np.uint8
    assert [f["index"] for f in gt["frames"]] == list(range(cfg.frames))


def test_ground_truth_boxes_match_the_pixels(tmp_path):
    cfg = VideoConfig(**SMALL, brightness_changes=False)
    paths = generate_clip(cfg, tmp_path)
    gt = read_ground_truth(paths.ground_truth)
    for frame, info in zip(decode_frames(paths.video), gt["frames"]):
        grey = frame[:, :, 1].astype(float)
        outside = np.ones(grey.shape, bool)
        for obj in info["objects"]:
            x1, y1, x2, y2 = obj["box"]
            assert 0 <= x1 < x2 <= cfg.width and 0 <= y1 < y2 <= cfg.height
            assert 0 < obj["visible"] <= 1 and 0 <= obj["label"] <= 9
            outside[max(y1 - 3, 0) : y2 + 3, max(x1 - 3, 0) : x2 + 3] = False
        background = np.percentile(grey[outside], 99.9)
        for obj in info["objects"]:
            if obj["visible"] == 1.0:
                x1, y1, x2, y2 = obj["box"]
                assert grey[y1:y2, x1:x2].max() > background + 40, (info["index"], obj)


def test_generation_is_deterministic(tmp_path):
    cfg = VideoConfig(**SMALL)
    a = generate_clip(cfg, tmp_path / "a")
    b = generate_clip(cfg, tmp_path / "b")
    assert json.loads(a.ground_truth.read_text()) == json.loads(b.ground_truth.read_text())
    assert np.array_equal(read_video(a.video), read_video(b.video))
    c = generate_clip(VideoConfig(**{**SMALL, "seed": 8}), tmp_path / "c")
    assert read_ground_truth(c.ground_truth)["frames"] != read_ground_truth(a.ground_truth)["frames"]


def test_objects_move_enter_leave_and_occlude(tmp_path):
    cfg = VideoConfig(**{**SMALL, "frames": 40})
    gt = read_ground_truth(generate_clip(cfg, tmp_path).ground_truth)
    tracks = [{o["track_id"] for o in f["objects"]} for f in gt["frames"]]
    everyone = set(range(cfg.num_objects))
    assert set().union(*tracks) == everyone
    assert any(t != everyone for t in tracks[:5]) or any(t != everyone for t in tracks[-5:]), \
        "a transient object should enter or leave"
    first = {o["track_id"]: o["box"] for o in gt["frames"][0]["objects"]}
    last = {o["track_id"]: o["box"] for o in gt["frames"][-1]["objects"]}
    assert any(first[k] != last[k] for k in first.keys() & last.keys()), "objects must move"
    occluded = [o for f in gt["frames"] for o in f["objects"] if o["visible"] < 0.9
                and 0 < o["box"][0] and o["box"][2] < cfg.width and 0 < o["box"][1] and o["box"][3] < cfg.height]
    assert occluded, "occlusion=True should hide part of an object inside the frame"


def test_no_occlusion_keeps_objects_apart(tmp_path):
    cfg = VideoConfig(**{**SMALL, "occlusion": False, "frames": 40})
    gt = read_ground_truth(generate_clip(cfg, tmp_path).ground_truth)
    for f in gt["frames"]:
        boxes = [o["box"] for o in f["objects"]]
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                a, b = boxes[i], boxes[j]
                assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], (f["index"], a, b)


def test_brightness_changes(tmp_path):
    cfg = VideoConfig(**{**SMALL, "num_objects": 0, "frames": 30})
    frames = read_video(generate_clip(cfg, tmp_path).video).astype(float)
    steady = read_video(generate_clip(VideoConfig(**{**SMALL, "num_objects": 0, "frames": 30,
                                                     "brightness_changes": False}),
                                      tmp_path / "steady").video).astype(float)
    means = frames.mean(axis=(1, 2, 3))
    assert means[-5:].mean() < 0.8 * means[:10].mean()
    assert steady.mean(axis=(1, 2, 3)).std() < 1.0


@pytest.mark.parametrize("kwargs", [
    dict(frames=0), dict(fps=0), dict(width=31), dict(height=101), dict(num_objects=-1),
    dict(digit_size=4), dict(codec="avc1"), dict(noise_std=-0.1),
    dict(occlusion=False, num_objects=9, height=120, digit_size=24),
])
def test_config_validation(kwargs):
    with pytest.raises(ValueError):
        VideoConfig(**kwargs)


def test_missing_and_corrupt_files_raise_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        list(decode_frames(tmp_path / "nope.avi"))
    with pytest.raises(FileNotFoundError):
        read_ground_truth(tmp_path / "nope.json")
    garbage = tmp_path / "garbage.avi"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 20000, dtype=np.uint8).tobytes())
    with pytest.raises(VideoDecodeError):
        list(decode_frames(garbage))
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(VideoDecodeError):
        read_video(empty)
    bad_gt = tmp_path / "bad.json"
    bad_gt.write_text("{}")
    with pytest.raises(ValueError, match="ground-truth"):
        read_ground_truth(bad_gt)


def test_wrong_frame_size_is_reported(tmp_path):
    paths = generate_clip(VideoConfig(**{**SMALL, "frames": 3}), tmp_path)
    with pytest.raises(VideoDecodeError, match="expected"):
        list(decode_frames(paths.video, expected_size=(320, 240)))


def test_cached_clip_is_reused(tmp_cache):
    cfg = VideoConfig(**{**SMALL, "frames": 5})
    p1, built1 = cached_clip(cfg)
    p2, built2 = cached_clip(cfg)
    assert built1 and not built2 and p1 == p2
    assert str(p1.video).startswith(str(tmp_cache))
