"""Task 4.2: crops of many frames and streams classified together, each answer routed back to its frame; and an
optimized (smaller) classifier that keeps the pipeline's accuracy.
"""
from __future__ import annotations

import collections
import io
import queue
import threading
import time

import numpy as np
import torch
from torch import nn

from ...checks import expect
from ...plugin import criterion
from .scoring import detection_scores
from .workload import (Recorder, accounting_problems, call_quiet, classifier, clip, detections_match, expected,
                       make_sources, propose, run_pipeline)

MAX_CROPS = 24
ATOL = 1e-4


class Spy(nn.Module):
    """The classifier, counting its calls and the crops of each."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner
        self.sizes: list[int] = []
        self._lock = threading.Lock()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with self._lock:
            self.sizes.append(int(x.shape[0]))
        return self.inner(x)


class GraderQueue:
    """The grader's own queue with FrameQueue's ``get`` contract (so Task 4.2 is graded without Task 4.4)."""

    def __init__(self, closed_error: type[Exception]):
        self.q: queue.Queue = queue.Queue()
        self.closed = False
        self.closed_error = closed_error

    def put(self, item) -> None:
        self.q.put(item)

    def get(self, timeout: float | None = None):
        try:
            return self.q.get(timeout=0 if self.closed else timeout)
        except queue.Empty:
            if self.closed:
                raise self.closed_error("closed and empty") from None
            raise


def _items(learner, n_frames: int) -> tuple[list, list[tuple]]:
    """Preprocessed frames from three clips, interleaved (frame i of clip i % 3), and the grader's answers."""
    from labdata.video import decode_frames

    frames_cls, pre_cls = learner.attr("SourceFrame"), learner.attr("Preprocessed")
    decoded = {k: list(decode_frames(clip(k)[0])) for k in range(3)}
    items, want = [], []
    for i in range(n_frames):
        k, idx = i % 3, 10 + i
        image = decoded[k][idx]
        boxes, crops = propose(image)
        items.append(pre_cls(frames_cls(f"cam{k:02d}", idx, time.perf_counter(), image), boxes, crops))
        want.append(expected(k)[idx])
    return items, want


@criterion("p4.pipeline.batching")
def test_batching(grade, learner):
    problems = []
    closed_error = learner.attr("QueueClosed")
    call_quiet(learner.attr("classify_batch"), classifier(), [], score_threshold=0.5)  # a stub stops here
    items, want = _items(learner, 12)
    # classify_batch: one call, each frame its own answer
    spy = Spy(classifier())
    got = call_quiet(learner.attr("classify_batch"), spy, items, score_threshold=0.5)
    expect(isinstance(got, list) and len(got) == len(items), f"classify_batch must return one Detections per item "
                                                            f"({len(items)}), got {type(got).__name__}")
    wrong = [i for i, (g, w) in enumerate(zip(got, want))
             if not detections_match((g.boxes, g.labels, g.scores), w, ATOL)]
    if wrong:
        problems.append(f"classify_batch: {len(wrong)} of {len(items)} frames got detections that are not theirs "
                        f"(first: item {wrong[0]})")
    if len(spy.sizes) != 1:
        problems.append(f"classify_batch called the classifier {len(spy.sizes)} times for one batch (once is the point)")
    # collect_batch: stops at max_crops, waits at most max_wait_s, hands back what it has when closed
    q = GraderQueue(closed_error)
    for it in items:
        q.put(it)
    crops = [len(it.crops) for it in items]
    batch = call_quiet(learner.attr("collect_batch"), q, max_crops=MAX_CROPS, max_wait_s=0.5)
    n = len(batch)
    enough = next(i + 1 for i in range(len(crops)) if sum(crops[:i + 1]) >= MAX_CROPS) if sum(crops) >= MAX_CROPS \
        else len(crops)
    if n != enough or any(a is not b for a, b in zip(batch, items)):
        problems.append(f"collect_batch took {n} frames; with {crops[:enough]} crops waiting and max_crops="
                        f"{MAX_CROPS} it should take the first {enough}, in order")
    q2 = GraderQueue(closed_error)
    q2.put(items[0])
    t0 = time.perf_counter()
    lone = call_quiet(learner.attr("collect_batch"), q2, max_crops=MAX_CROPS, max_wait_s=0.1)
    waited = time.perf_counter() - t0
    if len(lone) != 1 or waited > 0.1 + 0.25:
        problems.append(f"collect_batch with one frame waiting returned {len(lone)} frames after {1000 * waited:.0f} ms "
                        f"(max_wait 100 ms)")
    q2.closed = True
    try:
        call_quiet(learner.attr("collect_batch"), q2, max_crops=MAX_CROPS, max_wait_s=0.05)
        problems.append("collect_batch on a closed, empty queue returned instead of raising QueueClosed")
    except closed_error:
        pass
    except Exception as e:  # noqa: BLE001 - the learner's mistake
        problems.append(f"collect_batch on a closed, empty queue raised {type(e).__name__}, not QueueClosed")
    # in the pipeline: four streams flooding (not live, nothing dropped): batches of several frames
    rec = Recorder()
    spy = Spy(classifier())
    run = run_pipeline(learner, make_sources(learner, 4, rec, frames=45, live=False), rec, classifier_model=spy,
                       config={"policy": "block", "max_batch_crops": MAX_CROPS, "max_wait_ms": 20.0}, timeout_s=90)
    problems += accounting_problems(run)
    frames_with_crops = sum(1 for log in rec.streams.values() for r in log.results.values()) or 1
    calls = len(spy.sizes)
    per_call = frames_with_crops / max(calls, 1)
    over = [s for s in spy.sizes if s > MAX_CROPS + 8]
    if per_call < 2.0:
        problems.append(f"the pipeline called the classifier {calls} times for {frames_with_crops} frames "
                        f"({per_call:.1f} frames per call): its inference stage does not batch across frames")
    if over:
        problems.append(f"{len(over)} classifier calls held more than max_batch_crops={MAX_CROPS} crops (largest "
                        f"{max(over)})")
    wrong = 0
    for i, (name, log) in enumerate(sorted(rec.streams.items())):
        w = expected(i % 4)
        wrong += sum(1 for idx, r in log.results.items() if not detections_match(r[:3], w[idx], ATOL))
    if wrong:
        problems.append(f"{wrong} frames in the pipeline got detections that are not theirs (answers routed to the "
                        f"wrong frame or stream)")
    grade.record(len(problems), message="; ".join(problems) or f"one classifier call per batch, "
                 f"{per_call:.1f} frames per call across 4 streams, every answer routed to its frame",
                 details={"problems": problems, "frames_per_call": round(per_call, 2), "classifier_calls": calls,
                          "crops_per_call": round(float(np.mean(spy.sizes)), 1) if spy.sizes else 0.0})


def _size(model: nn.Module) -> int:
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return len(buf.getvalue())


def _pipeline_f1(learner, model: nn.Module, clips: int) -> float:
    rec = Recorder()
    run = run_pipeline(learner, make_sources(learner, clips, rec, frames=90, live=False, clips=clips), rec,
                       classifier_model=model, config={"policy": "block", "device": "cpu"}, timeout_s=120)
    bad = accounting_problems(run)
    expect(not bad, f"the pipeline's counts are wrong: {bad[0] if bad else ''}")
    scores = collections.Counter()
    for i, (name, log) in enumerate(sorted(rec.streams.items())):
        s = detection_scores({idx: r[:3] for idx, r in log.results.items()}, clip(i)[1]["frames"])
        for k in ("tp", "fp", "fn"):
            scores[k] += s[k]
    p = scores["tp"] / max(scores["tp"] + scores["fp"], 1)
    r = scores["tp"] / max(scores["tp"] + scores["fn"], 1)
    return 2 * p * r / max(p + r, 1e-12)


@criterion("p4.pipeline.optimized_f1")
def test_optimized_f1(grade, learner):
    fp32 = classifier()
    before = {k: v.clone() for k, v in fp32.state_dict().items()}
    small = call_quiet(learner.attr("optimize_classifier"), fp32)
    expect(isinstance(small, nn.Module), f"optimize_classifier must return an nn.Module, got {type(small).__name__}")
    expect(all(torch.equal(before[k], v) for k, v in fp32.state_dict().items()),
           "optimize_classifier changed the FP32 classifier it was given (work on a copy)")
    size_pct = 100.0 * _size(small) / _size(fp32)
    f1_fp32 = _pipeline_f1(learner, fp32, 2)
    f1_opt = _pipeline_f1(learner, small, 2)
    kept = 100.0 * f1_opt / max(f1_fp32, 1e-9)
    details = {"f1_fp32": round(f1_fp32, 4), "f1_optimized": round(f1_opt, 4), "size_pct": round(size_pct, 1)}
    if size_pct > 60.0:
        grade.fail(f"the optimized classifier's saved weights are {size_pct:.0f} % of the FP32 model's (at most 60 %): "
                   f"a copy of the FP32 model is not an optimization", value=kept, details=details)
        return
    grade.record(kept, message=f"the optimized pipeline keeps {kept:.1f} % of the FP32 pipeline's F1 "
                 f"({f1_opt:.3f} vs {f1_fp32:.3f}) with a model {size_pct:.0f} % of the size", details=details)
