"""Task 4.3: the pipeline's detections and tracks against the ground truth of clips generated for this grade.

Both criteria read one run of the learner's pipeline over three clips (not live, ``block`` policy: every frame
answered, so accuracy is graded apart from speed): detection F1 at IoU 0.5 (``labdata.detector``'s
``evaluate_detections``) and IDF1 with ``motmetrics`` (:mod:`.scoring`), plus the events' form and order.
"""
from __future__ import annotations

import functools

from ...checks import expect
from ...plugin import criterion
from ...submission import SubmissionError
from .scoring import detection_scores, gt_events, tracking_scores
from .workload import WIDTH, Recorder, accounting_problems, clip, detector_f1, make_sources, run_pipeline

CLIPS = 3


@functools.lru_cache(maxsize=1)
def _run(learner):
    rec = Recorder()
    run = run_pipeline(learner, make_sources(learner, CLIPS, rec, frames=90, live=False, clips=CLIPS), rec,
                       config={"policy": "block"}, timeout_s=120)
    bad = accounting_problems(run)
    expect(not bad, f"the pipeline's counts are wrong: {bad[0] if bad else ''}")
    return run


@criterion("p4.pipeline.detection_f1")
def test_detection_f1(grade, learner):
    run = _run(learner)
    per_clip, tp = {}, {"tp": 0, "fp": 0, "fn": 0}
    for i, (name, log) in enumerate(sorted(run.recorder.streams.items())):
        s = detection_scores({idx: r[:3] for idx, r in log.results.items()}, clip(i)[1]["frames"])
        per_clip[name] = round(s["f1"], 4)
        for k in tp:
            tp[k] += s[k]
    p = tp["tp"] / max(tp["tp"] + tp["fp"], 1)
    r = tp["tp"] / max(tp["tp"] + tp["fn"], 1)
    f1 = 100.0 * 2 * p * r / max(p + r, 1e-12)
    base = 100.0 * detector_f1(CLIPS)["f1"]
    kept = 100.0 * f1 / max(base, 1e-9)
    grade.record(kept, message=f"detection F1 {f1:.1f} % at IoU 0.5 on {CLIPS} fresh clips (precision {100 * p:.1f} %, "
                 f"recall {100 * r:.1f} %): {kept:.1f} % of the detector's own {base:.1f} % on the same frames",
                 details={"f1_pct": round(f1, 2), "detector_f1_pct": round(base, 2), "precision_pct": round(100 * p, 2),
                          "recall_pct": round(100 * r, 2), "f1_per_clip": per_clip, **tp})


def _event_problems(run) -> list[str]:
    problems, open_ids = [], {}
    for e in run.recorder.events:
        kind, stream, tid = getattr(e, "type", None), getattr(e, "stream", None), getattr(e, "track_id", None)
        if kind not in ("enter", "leave", "cross") or stream not in run.recorder.streams:
            problems.append(f"an event of type {kind!r} on stream {stream!r}: expected enter/leave/cross on a known stream")
            break
        ids = open_ids.setdefault(stream, set())
        if kind == "enter":
            if tid in ids:
                problems.append(f"{stream}: track {tid} entered twice")
                break
            ids.add(tid)
        elif tid not in ids:
            problems.append(f"{stream}: a {kind} event for track {tid}, which never entered (or already left)")
            break
        elif kind == "leave":
            ids.discard(tid)
        elif getattr(e, "direction", None) not in ("left_to_right", "right_to_left"):
            problems.append(f"{stream}: a cross event without a direction")
            break
    still = {s: ids for s, ids in open_ids.items() if ids}
    if still and not problems:
        s, ids = next(iter(still.items()))
        problems.append(f"{s}: tracks {sorted(ids)[:5]} entered but never left by the end of the stream")
    for name, log in run.recorder.streams.items():
        seen = {int(t) for r in log.results.values() for t in r[3]}
        entered = {getattr(e, "track_id", None) for e in run.recorder.events
                   if getattr(e, "stream", None) == name and getattr(e, "type", None) == "enter"}
        if seen - entered:
            problems.append(f"{name}: tracks {sorted(seen - entered)[:5]} appear in results with no enter event")
            break
    return problems


@criterion("p4.pipeline.tracking")
def test_tracking(grade, learner):
    run = _run(learner)
    totals = {"mota": [], "idf1": [], "id_switches": 0, "num_frames": 0}
    crossings = {"true": 0, "yours": 0}
    for i, (name, log) in enumerate(sorted(run.recorder.streams.items())):
        gt = clip(i)[1]["frames"]
        try:
            s = tracking_scores({idx: (r[0], r[3]) for idx, r in log.results.items()}, gt)
        except ValueError as e:
            raise SubmissionError(f"{name}: {e}") from None
        totals["mota"].append(s["mota"])
        totals["idf1"].append(s["idf1"])
        totals["id_switches"] += s["id_switches"]
        totals["num_frames"] += s["num_frames"]
        crossings["true"] += gt_events(gt, WIDTH, min_visible=0.5)["crossings"]
    crossings["yours"] = sum(1 for e in run.recorder.events if getattr(e, "type", None) == "cross")
    idf1 = 100.0 * sum(totals["idf1"]) / len(totals["idf1"])
    mota = 100.0 * sum(totals["mota"]) / len(totals["mota"])
    per100 = 100.0 * totals["id_switches"] / max(totals["num_frames"], 1)
    base = 100.0 * detector_f1(CLIPS)["f1"]
    share = 100.0 * idf1 / max(base, 1e-9)
    details = {"idf1_share_pct": round(share, 2), "detector_f1_pct": round(base, 2), "idf1_pct": round(idf1, 2),
               "mota_pct": round(mota, 2), "id_switches": totals["id_switches"],
               "id_switches_per_100_frames": round(per100, 2), "events": len(run.recorder.events),
               "cross_events": crossings["yours"], "true_crossings": crossings["true"]}
    problems = _event_problems(run)
    if problems:
        grade.fail(f"events: {problems[0]}", value=share, details={**details, "problems": problems})
        return
    grade.record(share, message=f"IDF1 {idf1:.1f} % ({share:.0f} % of the detector's own F1, {base:.1f} %), "
                 f"MOTA {mota:.1f} %, {per100:.1f} identity switches per 100 frames "
                 f"on {CLIPS} fresh clips; {crossings['yours']} line crossings reported ({crossings['true']} true)",
                 details=details)
