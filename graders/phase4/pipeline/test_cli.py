"""Task 4.6: the command a person runs, on two of this grade's clips, and the two pieces it needs from the learner
(``annotate_frame``, ``stage_summary``), each checked against what it must show.

The command is the course's own ``phase4_production/pipeline/cli.py`` (a helper) driving the learner's package;
the grader calls its ``main`` in this process with the learner's package, as ``python -m
phase4_production.pipeline run a.avi b.avi --out out/ --no-live`` would.
"""
from __future__ import annotations

import contextlib
import importlib
import io
import json

import numpy as np

from ...checks import expect
from ...plugin import criterion
from .workload import call_quiet, classifier, clip, expected


#: The frame of clip 0 the report shows annotated.
SHOWN = 45


def _picture(learner) -> str | None:
    """Your ``annotate_frame`` on a frame of this grade's clip with the detector's own boxes, as base64 PNG."""
    import base64

    import cv2
    from labdata.video import decode_frames

    image = list(decode_frames(clip(0)[0]))[SHOWN]
    boxes, labels, scores = expected(0)[SHOWN]
    result = learner.attr("FrameResult")("cam00", SHOWN, 0.0, boxes, labels, scores, np.arange(len(labels)), 0.01, image)
    try:
        out = learner.attr("annotate_frame")(image, result)
        ok, png = cv2.imencode(".png", np.asarray(out), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    except Exception:  # noqa: BLE001 - the picture is a courtesy; _annotate_problems grades
        return None
    return base64.b64encode(png.tobytes()).decode("ascii") if ok else None


def _annotate_problems(learner) -> list[str]:
    from labdata.video import decode_frames

    frame_cls = learner.attr("FrameResult")
    image = next(iter(decode_frames(clip(0)[0])))
    before = image.copy()
    boxes = np.array([[40, 40, 80, 90], [150, 100, 190, 150]], np.float32)
    result = frame_cls("cam00", 0, 0.0, boxes, np.array([3, 7]), np.array([0.9, 0.8], np.float32),
                       np.array([1, 2]), 0.01, image)
    out = call_quiet(learner.attr("annotate_frame"), image, result)
    problems = []
    if not np.array_equal(image, before):
        problems.append("annotate_frame drew on the frame it was given (draw on a copy)")
    if not isinstance(out, np.ndarray) or out.shape != image.shape or out.dtype != np.uint8:
        return problems + [f"annotate_frame must return a uint8 array of the frame's shape {image.shape}"]
    for x1, y1, x2, y2 in boxes.astype(int):
        edge = np.concatenate([out[y1:y2, x1], out[y1:y2, x2 - 1], out[y1, x1:x2], out[y2 - 1, x1:x2]])
        orig = np.concatenate([image[y1:y2, x1], image[y1:y2, x2 - 1], image[y1, x1:x2], image[y2 - 1, x1:x2]])
        if np.mean(np.any(edge != orig, axis=1)) < 0.5:
            problems.append(f"annotate_frame: the box {[int(v) for v in (x1, y1, x2, y2)]} is not outlined")
            break
    return problems


def _summary_problems(learner) -> list[str]:
    """``stage_summary`` on a report with random figures, against the grader's own arithmetic."""
    rng = np.random.default_rng()
    stats_cls, report_cls = learner.attr("StageStats"), learner.attr("PipelineReport")
    names = ("decode", "preprocess", "inference", "track")
    wall = float(rng.uniform(2, 20))
    stats = {n: stats_cls(n, int(rng.integers(10, 1000)), float(rng.uniform(0.1, 3.0)), float(rng.uniform(1, 5)),
                          float(rng.uniform(5, 20)), int(rng.integers(1, 4))) for n in names}
    rows = call_quiet(learner.attr("stage_summary"), report_cls(streams={}, stages=dict(reversed(stats.items())),
                                                                 wall_s=wall))
    if not isinstance(rows, list) or [r.get("stage") if isinstance(r, dict) else None for r in rows] != list(names):
        return [f"stage_summary must return one dict per stage in the order {list(names)}"]
    total = sum(s.busy_s for s in stats.values())
    problems = []
    for row in rows:
        s = stats[row["stage"]]
        want = {"throughput_per_s": s.items / wall, "utilisation": min(s.busy_s / (wall * s.threads), 1.0),
                "share": s.busy_s / total, "busy_s": s.busy_s, "items": s.items}
        for key, w in want.items():
            got = row.get(key)
            if not isinstance(got, (int, float)) or abs(got - w) > 1e-9 * max(1.0, abs(w)):
                problems.append(f"stage_summary: {row['stage']}'s {key} is {got!r}, expected {w:.6g}")
                break
    try:
        learner.attr("stage_summary")(report_cls(streams={}, stages=stats, wall_s=0.0))
        problems.append("stage_summary accepted a report with wall_s = 0 (expected ValueError)")
    except ValueError:
        pass
    except Exception as e:  # noqa: BLE001 - the learner's mistake
        problems.append(f"stage_summary raised {type(e).__name__} for wall_s = 0, expected ValueError")
    return problems


@criterion("p4.pipeline.cli")
def test_cli(grade, learner, tmp_path):
    # the course's command, from the package beside the learner's starter/ (a helper every copy has in full)
    cli = importlib.import_module(learner.module.__name__.rsplit(".", 1)[0] + ".cli")
    problems = _annotate_problems(learner) + _summary_problems(learner)
    videos = [clip(0)[0], clip(1)[0]]
    out = tmp_path / "out"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        rc = cli.main(["run", *map(str, videos), "--out", str(out), "--no-live"], package=learner.module,
                      classifier=classifier())
    text = buf.getvalue()
    if "not implemented yet" in text:
        expect(False, f"the command says: {text[text.index('not implemented yet'):][:200]}")
    if rc != 0:
        problems.append(f"the command exited {rc} on two good clips; it printed: {text[-300:]!r}")
    from labdata.video import decode_frames

    for v in videos:
        ann = out / f"{v.stem}.annotated.avi"
        if not ann.is_file():
            problems.append(f"no annotated video {ann.name}")
            continue
        n = sum(1 for _ in decode_frames(ann))
        if n != 90:
            problems.append(f"{ann.name} holds {n} frames, the clip has 90")
    events = out / "events.jsonl"
    try:
        rows = [json.loads(line) for line in events.read_text().splitlines() if line.strip()]
        if not rows or any(not {"type", "stream", "frame", "track_id"} <= set(r) for r in rows):
            problems.append("events.jsonl is empty or its lines lack type/stream/frame/track_id")
    except (OSError, ValueError) as e:
        problems.append(f"events.jsonl unreadable: {e}")
    try:
        summary = json.loads((out / "summary.json").read_text())
        stages = {row.get("stage") or row.get("name"): row for row in summary.get("stages_summary", summary.get("stages", []))}
        if set(stages) != {"decode", "preprocess", "inference", "track"}:
            problems.append(f"summary.json should hold one row per stage, found {sorted(map(str, stages))}")
    except (OSError, ValueError, AttributeError) as e:
        problems.append(f"summary.json unreadable: {e}")
    png = out / "stages.png"
    if not png.is_file() or png.read_bytes()[:8] != b"\x89PNG\r\n\x1a\n":
        problems.append("no stages.png plot of where the time goes")
    details = {"problems": problems, "exit_code": rc}
    picture = _picture(learner)
    if picture is not None:
        details["picture"] = picture
    grade.record(len(problems), message="; ".join(problems) or "the command wrote annotated videos, events.jsonl, "
                 "summary.json and stages.png for two clips (your annotate_frame on a frame of this grade's clip "
                 "is in the report)", details=details)
