"""Tasks 4.1 and 4.5 (and 4.4's policy inside the pipeline): Pipeline.run on two short streams answers every frame
once, in order, with its own detections and release time, and accounts for every frame it drops; a failing source
ends only its own stream; a hung classifier or a timeout stops the run with every frame counted; no thread is left.

The streams are rendered in memory (20 frames of 160x120, digits of 24 px) and played by ArraySource, mostly not
live (as fast as the pipeline takes them), so each run takes well under a second; the file takes about 10-15 s
on two cores, most of it loading torch and the digits CNN. Nothing is timed beyond "it did not hang".
"""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch
from torch import nn

from labdata.video import VideoConfig, render_frames

from .impl import p4p

FRAMES = 20
#: Longest a run in this file may take before it counts as a hang (a hung run is abandoned, its threads daemons).
HANG_S = 30.0


# ------------------------------------------------------------------------------------------------
# Streams, the detector's own answers, and a recorder of what the pipeline hands out
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def clips() -> list[list[np.ndarray]]:
    """Two short clips of moving digits, uint8 [120, 160, 3] BGR frames."""
    return [[f for f, _ in render_frames(VideoConfig(width=160, height=120, digit_size=24, frames=FRAMES, seed=s))]
            for s in (1, 2)]


@pytest.fixture(scope="module")
def classifier() -> nn.Module:
    return p4p.default_classifier()


def detect(classifier: nn.Module, image: np.ndarray, threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The detector's own answer on one frame: region proposal, then the classifier on that frame's crops alone."""
    boxes, crops = p4p.propose(image)
    if len(boxes) == 0:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.int64), np.zeros(0, np.float32)
    with torch.inference_mode():
        scores, labels = torch.softmax(classifier(crops), dim=1).max(dim=1)
    keep = (scores >= threshold).numpy()
    return boxes.astype(np.float32)[keep], labels.numpy()[keep], scores.numpy()[keep]


@pytest.fixture(scope="module")
def expected(clips, classifier) -> list[list[tuple]]:
    """``expected[k][i]``: the detector's answer on frame ``i`` of clip ``k``."""
    return [[detect(classifier, f) for f in frames] for frames in clips]


def same_detections(result, want: tuple) -> bool:
    """The result's boxes, labels and scores equal ``want`` (as sets of detections; scores within 1e-4)."""
    gb, gl, gs = np.asarray(result.boxes, np.float32).reshape(-1, 4), np.asarray(result.labels), np.asarray(result.scores)
    wb, wl, ws = want
    if gb.shape != wb.shape or gl.shape != wl.shape or gs.shape != ws.shape:
        return False
    gi, wi = np.lexsort((gl, *gb.T[::-1])), np.lexsort((wl, *wb.T[::-1]))
    return (np.array_equal(gb[gi], wb[wi]) and np.array_equal(gl[gi], wl[wi])
            and np.allclose(gs[gi], ws[wi], atol=1e-4))


class Recorded(p4p.ArraySource):
    """An ArraySource that notes the release time of every frame it hands out."""

    def __init__(self, frames, **kwargs):
        super().__init__(frames, **kwargs)
        self.released: dict[int, float] = {}

    def __iter__(self):
        for frame in super().__iter__():
            self.released[frame.index] = frame.release_t
            yield frame


class Failing(Recorded):
    """Decodes ``ok`` frames, then fails as a corrupt video does."""

    def __init__(self, frames, *, ok: int, **kwargs):
        super().__init__(frames, **kwargs)
        self.ok = ok

    def _images(self):
        yield from self.frames[:self.ok]
        raise p4p.VideoDecodeError(f"{self.name}: frame {self.ok} is corrupt")


class Recorder:
    """``on_result`` / ``on_event`` callbacks: results by stream in the order received, and the time of each."""

    def __init__(self):
        self.results: dict[str, list] = {}
        self.times: dict[str, list[float]] = {}
        self.events: list = []

    def on_result(self, r) -> None:
        self.results.setdefault(r.stream, []).append(r)
        self.times.setdefault(r.stream, []).append(time.perf_counter())

    def on_event(self, e) -> None:
        self.events.append(e)

    def indices(self, stream: str) -> list[int]:
        return [r.index for r in self.results.get(stream, [])]


def sources(clips, *, live: bool = False, fps: float = 30.0, cls=Recorded, **kwargs) -> list:
    return [cls(frames, name=f"cam{k}", fps=fps, live=live, **kwargs) for k, frames in enumerate(clips)]


def run(pipe, srcs, rec: Recorder | None = None, *, on_result=None, timeout_s: float | None = None,
        hang_s: float = HANG_S):
    """``pipe.run(srcs)`` with ``rec``'s callbacks (or ``on_result``), on a thread of its own, so that a run that never
    returns fails the test instead of hanging it; what ``run`` raised is raised here."""
    box: dict = {}
    if rec is not None:
        on_result = rec.on_result

    def target():
        try:
            box["report"] = pipe.run(srcs, on_result=on_result, on_event=rec.on_event if rec else None,
                                     timeout_s=timeout_s)
        except BaseException as e:  # noqa: BLE001 - re-raised on the test's thread
            box["error"] = e

    t = threading.Thread(target=target, name="test-run", daemon=True)
    t.start()
    t.join(hang_s)
    assert not t.is_alive(), f"Pipeline.run did not return within {hang_s:.0f} s"
    if "error" in box:
        raise box["error"]
    return box["report"]


def assert_accounted(report, srcs) -> None:
    """Every frame each source released is one result or one counted drop, and the report's counts are the truth."""
    assert list(report.streams) == [s.name for s in srcs], "one StreamReport per source, in the sources' order"
    for s in srcs:
        rep = report.streams[s.name]
        assert rep.frames_in == len(s.released), f"{s.name}: frames_in={rep.frames_in}, released {len(s.released)}"
        assert rep.frames_in == rep.frames_out + rep.dropped_total, (
            f"{s.name}: {rep.frames_in} in != {rep.frames_out} out + {rep.dropped} dropped")
        assert rep.completed, f"{s.name}: not completed"


# ------------------------------------------------------------------------------------------------
# Task 4.1: stages and queues
# ------------------------------------------------------------------------------------------------
@pytest.mark.phase4_task1
def test_every_frame_is_answered_once_in_order_with_its_own_detections(clips, classifier, expected, no_thread_leak):
    pipe = p4p.Pipeline(classifier, p4p.PipelineConfig(policy="block", preprocess_workers=2))
    srcs, rec = sources(clips), Recorder()
    report = run(pipe, srcs, rec)
    assert_accounted(report, srcs)
    for k, s in enumerate(srcs):
        assert rec.indices(s.name) == list(range(FRAMES)), f"{s.name}: results {rec.indices(s.name)}"
        rep = report.streams[s.name]
        assert (rep.frames_out, rep.dropped_total, rep.error) == (FRAMES, 0, None)
        for r in rec.results[s.name]:
            assert r.release_t == s.released[r.index], f"{s.name} frame {r.index}: release_t not carried through"
            assert r.done_t >= r.release_t and r.latency_ms >= 0
            assert same_detections(r, expected[k][r.index]), (
                f"{s.name} frame {r.index}: detections are not the detector's own on that frame (another frame's?)")
            assert r.image is None, "without keep_images no image is handed out"
    assert report.stalled is None and report.wall_s > 0
    assert report.frames_in == report.frames_out == 2 * FRAMES and report.dropped == 0
    assert report.crops == sum(len(p4p.propose(f)[0]) for frames in clips for f in frames), "every proposal classified"
    assert 1 <= report.batches <= report.crops


@pytest.mark.phase4_task1
def test_the_report_says_where_the_time_went(clips, classifier, no_thread_leak):
    pipe = p4p.Pipeline(classifier, p4p.PipelineConfig(policy="block", preprocess_workers=3))
    report = run(pipe, sources(clips))
    assert set(report.stages) == set(p4p.STAGES)
    st = report.stages
    assert {n: st[n].threads for n in p4p.STAGES} == {"decode": 2, "preprocess": 3, "inference": 1, "track": 1}
    assert st["decode"].items == st["preprocess"].items == st["track"].items == 2 * FRAMES
    assert st["inference"].items == report.batches, "the inference stage's items are its batches"
    for n in p4p.STAGES:
        assert st[n].busy_s > 0 and st[n].p50_ms <= st[n].p99_ms, st[n]


@pytest.mark.phase4_task1
def test_streams_run_side_by_side(clips, classifier, no_thread_leak):
    """Two live streams of one second each: the second one's results start before the first one's end."""
    pipe = p4p.Pipeline(classifier, p4p.PipelineConfig())
    srcs, rec = sources(clips, live=True, fps=20.0), Recorder()
    report = run(pipe, srcs, rec)
    assert_accounted(report, srcs)
    a, b = rec.times["cam0"], rec.times["cam1"]
    assert min(b) < max(a) and min(a) < max(b), (
        "one stream's results all came before the other's: the streams ran one after another, not side by side")
    for s in srcs:
        assert all(r.release_t == s.released[r.index] for r in rec.results[s.name])


@pytest.mark.phase4_task1
def test_each_stream_is_tracked_on_its_own(clips, classifier, no_thread_leak):
    """Track ids and events are what one IouTracker and one EventDetector per stream make of its detections."""
    cfg = p4p.PipelineConfig(policy="block")
    srcs, rec = sources(clips), Recorder()
    run(p4p.Pipeline(classifier, cfg), srcs, rec)
    for s in srcs:
        tracker = p4p.IouTracker(iou_min=cfg.iou_min, max_age=cfg.max_age)
        detector = p4p.EventDetector(s.name, width=160, line_x=cfg.line_x, max_age=cfg.max_age)
        want_events = []
        for r in rec.results[s.name]:
            ids = tracker.update(r.index, r.boxes, r.labels, r.scores)
            assert r.track_ids.dtype == np.int64 and r.track_ids.tolist() == ids.tolist(), (
                f"{s.name} frame {r.index}: track ids {r.track_ids.tolist()}, this stream's own tracker says "
                f"{ids.tolist()}")
            want_events += detector.update(r.index, ids, r.boxes, r.labels)
        want_events += detector.finish()
        got = [e for e in rec.events if e.stream == s.name]
        assert got == want_events, f"{s.name}: events differ from the stream's own EventDetector"
    assert any(e.type == "enter" for e in rec.events) and any(e.type == "leave" for e in rec.events)


@pytest.mark.phase4_task1
def test_keep_images_hands_out_each_frame(clips, classifier, no_thread_leak):
    srcs, rec = sources(clips), Recorder()
    run(p4p.Pipeline(classifier, p4p.PipelineConfig(policy="block", keep_images=True)), srcs, rec)
    for k, s in enumerate(srcs):
        for r in rec.results[s.name]:
            assert r.image is not None and np.array_equal(r.image, clips[k][r.index]), f"{s.name} frame {r.index}"


@pytest.mark.phase4_task1
def test_bad_sources_raise_pipeline_error_and_the_pipeline_still_runs(clips, classifier, no_thread_leak):
    pipe = p4p.Pipeline(classifier, p4p.PipelineConfig(policy="block"))
    twins = [p4p.ArraySource(clips[0], name="cam", live=False), p4p.ArraySource(clips[1], name="cam", live=False)]
    with pytest.raises(p4p.PipelineError):
        pipe.run(twins)
    with pytest.raises(p4p.PipelineError):
        pipe.run([])
    srcs = sources(clips)
    assert_accounted(run(pipe, srcs), srcs)                  # the refusals left nothing held
    srcs = sources(clips)
    assert_accounted(run(pipe, srcs), srcs)                  # and an instance runs again once run has returned


@pytest.mark.phase4_task1
def test_a_second_run_while_one_is_in_progress_is_refused(clips, classifier, no_thread_leak):
    pipe = p4p.Pipeline(classifier, p4p.PipelineConfig(policy="block"))
    refused: list = []

    def on_result(r):
        if not refused:
            try:
                pipe.run([p4p.ArraySource(clips[0], name="other", live=False)])
                refused.append("accepted")
            except Exception as e:  # noqa: BLE001 - the test looks at it
                refused.append(e)

    srcs = sources(clips)
    report = run(pipe, srcs, on_result=on_result)
    assert isinstance(refused[0], p4p.PipelineError), f"a concurrent run must raise PipelineError, got {refused[0]!r}"
    assert_accounted(report, srcs)


@pytest.mark.phase4_task1
def test_an_error_in_on_result_is_raised_by_run_after_shutdown(clips, classifier, no_thread_leak):
    def on_result(r):
        if r.index == 3:
            raise KeyError("the caller's bug")

    pipe = p4p.Pipeline(classifier, p4p.PipelineConfig(policy="block"))
    with pytest.raises(KeyError, match="the caller's bug"):
        run(pipe, sources(clips), on_result=on_result)


# ------------------------------------------------------------------------------------------------
# Task 4.4: the overload policy inside the pipeline
# ------------------------------------------------------------------------------------------------
class Slow(nn.Module):
    """The classifier, 40 ms slower per call: with batches of at most 4 crops (one or two frames), well under the
    120 frames a second of two live 60 FPS streams."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        time.sleep(0.04)
        return self.inner(x)


@pytest.mark.phase4_task4
def test_overload_with_a_tiny_queue_drops_frames_and_counts_every_one(clips, classifier, expected, no_thread_leak):
    cfg = p4p.PipelineConfig(queue_size=1, policy="drop_oldest", preprocess_workers=1, max_batch_crops=4)
    srcs, rec = sources(clips, live=True, fps=60.0, loops=2), Recorder()     # 40 frames each, in 0.67 s
    report = run(p4p.Pipeline(Slow(classifier), cfg), srcs, rec)
    assert_accounted(report, srcs)
    assert report.stalled is None
    overload = 0
    for k, s in enumerate(srcs):
        rep, got = report.streams[s.name], rec.indices(s.name)
        assert rep.frames_in == 2 * FRAMES and rep.frames_out == len(got), f"{s.name}: frames_out is not what on_result got"
        assert got == sorted(set(got)), f"{s.name}: results out of order or repeated: {got}"
        assert set(rep.dropped) <= {"overload"}, f"{s.name}: only the overload policy drops here, got {rep.dropped}"
        overload += rep.dropped.get("overload", 0)
        for r in rec.results.get(s.name, []):
            assert same_detections(r, expected[k][r.index % FRAMES]), f"{s.name} frame {r.index}: another frame's detections"
    assert overload > 0, "80 frames at over twice the pipeline's rate into a queue of 1: the policy must drop some"
    assert report.dropped == overload and report.frames_out > 0


@pytest.mark.phase4_task4
def test_block_with_a_tiny_queue_answers_everything(clips, classifier, no_thread_leak):
    cfg = p4p.PipelineConfig(queue_size=1, policy="block", preprocess_workers=1)
    srcs, rec = sources(clips), Recorder()                     # released as fast as the queue takes them
    report = run(p4p.Pipeline(classifier, cfg), srcs, rec)
    assert_accounted(report, srcs)
    assert report.dropped == 0 and all(rec.indices(s.name) == list(range(FRAMES)) for s in srcs)


# ------------------------------------------------------------------------------------------------
# Task 4.5: faults and shutdown
# ------------------------------------------------------------------------------------------------
@pytest.mark.phase4_task5
def test_a_failing_source_ends_its_stream_and_the_other_completes(clips, classifier, expected, no_thread_leak):
    good = Recorded(clips[0], name="good", live=False)
    bad = Failing(clips[1], ok=5, name="bad", live=False)
    rec = Recorder()
    report = run(p4p.Pipeline(classifier, p4p.PipelineConfig(policy="block")), [good, bad], rec)
    assert_accounted(report, [good, bad])
    assert report.stalled is None
    g, b = report.streams["good"], report.streams["bad"]
    assert g.error is None and rec.indices("good") == list(range(FRAMES))
    assert all(same_detections(r, expected[0][r.index]) for r in rec.results["good"])
    assert b.error and b.error.startswith("VideoDecodeError") and "frame 5 is corrupt" in b.error, b.error
    assert b.frames_in == 5, "the 5 frames released before the failure are counted"
    assert rec.indices("bad") == list(range(b.frames_out)), "what the bad stream released before failing is answered"


@pytest.mark.phase4_task5
def test_a_missing_file_is_reported_on_its_stream(clips, classifier, tmp_path, no_thread_leak):
    missing = p4p.VideoFileSource(tmp_path / "no_such_clip.avi", name="missing", fps=30, live=False)
    good = Recorded(clips[0], name="good", live=False)
    rec = Recorder()
    report = run(p4p.Pipeline(classifier, p4p.PipelineConfig(policy="block")), [good, missing], rec)
    m = report.streams["missing"]
    assert m.error and m.error.startswith("FileNotFoundError") and "no_such_clip.avi" in m.error, m.error
    assert (m.frames_in, m.frames_out, m.completed) == (0, 0, True)
    assert rec.indices("good") == list(range(FRAMES)) and report.streams["good"].error is None


class Hangs(nn.Module):
    """The classifier, until call ``after``: that call waits until ``release`` is set (a hung device)."""

    def __init__(self, inner: nn.Module, after: int):
        super().__init__()
        self.inner, self.after, self.calls = inner, after, 0
        self.release, self.hung = threading.Event(), threading.Event()

    def forward(self, x):
        self.calls += 1
        if self.calls > self.after:
            self.hung.set()
            self.release.wait(HANG_S)
        return self.inner(x)


@pytest.mark.phase4_task5
def test_a_hung_classifier_stops_the_run_with_every_frame_counted(clips, classifier, no_thread_leak):
    hang = Hangs(classifier, after=2)
    cfg = p4p.PipelineConfig(policy="block", stall_timeout_s=0.5, max_batch_crops=4)
    srcs, rec = sources(clips), Recorder()
    try:
        report = run(p4p.Pipeline(hang, cfg), srcs, rec)
    finally:
        hang.release.set()          # let the stuck thread go, so that it can end (the leak check waits for it)
    assert hang.hung.is_set()
    assert report.stalled == "inference", f"report.stalled={report.stalled!r}: the inference stage hung"
    assert_accounted(report, srcs)
    assert sum(rep.dropped.get("stalled", 0) for rep in report.streams.values()) > 0
    for s in srcs:
        rep = report.streams[s.name]
        assert rep.error and "stalled" in rep.error, f"{s.name}: the error must say the run stalled, got {rep.error!r}"
        assert rec.indices(s.name) == list(range(rep.frames_out)), "what was answered before the hang stays in order"


@pytest.mark.phase4_task5
def test_timeout_stops_live_streams_early_with_every_frame_counted(clips, classifier, no_thread_leak):
    srcs, rec = sources(clips, live=True, fps=10.0), Recorder()        # 2 s of frames each
    report = run(p4p.Pipeline(classifier, p4p.PipelineConfig()), srcs, rec, timeout_s=0.4)
    assert report.stalled == "timeout"
    assert_accounted(report, srcs)
    assert all(report.streams[s.name].frames_in < FRAMES for s in srcs), "the run must stop at its timeout"
