"""What every criterion of the pipeline part shares: clips with ground truth, the grader's own detector, the
learner's pipeline run under the grader's own clocks and counters, and the machine's own speed.

Clips are generated with ``labdata.video`` from a seed drawn afresh for each grade (so no answer can be
stored), once per grading process. The grader never trusts the learner's figures: each source is wrapped
so the grader notes itself when every frame is released, ``on_result``/``on_event`` note when each answer
arrives, and the learner's report is compared with those counts.
"""
from __future__ import annotations

import functools
import secrets
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ...checks import expect
from ...submission import LearnerError

#: Frames per second of every stream the grader plays (a camera's rate).
FPS = 30.0
#: Seed of this grading process's clips: fresh per grade.
SEED = secrets.randbelow(10**6)
#: Clip size: the course's default synthetic clip.
WIDTH, HEIGHT = 320, 240


@functools.lru_cache(maxsize=None)
def clip(k: int, frames: int = 90) -> tuple[Path, dict]:
    """Clip number ``k`` of this grade (``frames`` long, 30 FPS): (video path, ground truth)."""
    from labdata.video import VideoConfig, generate_clip, read_ground_truth

    folder = Path(tempfile.mkdtemp(prefix="p4-clips-"))
    paths = generate_clip(VideoConfig(frames=frames, fps=FPS, width=WIDTH, height=HEIGHT, seed=SEED + 7919 * k),
                          folder, stem=f"clip{k}")
    return paths.video, read_ground_truth(paths.ground_truth)


@functools.lru_cache(maxsize=1)
def classifier() -> torch.nn.Module:
    """The trained digits CNN, loaded by the grader itself from the catalog (never through the submission's
    copy of ``detector.py``, whose code counts as the learner's)."""
    from labdata import catalog

    return catalog.get("digits_cnn").model.eval()


def propose(image: np.ndarray) -> tuple[np.ndarray, torch.Tensor]:
    """The grader's own region proposal of a uint8 [H, W, 3] BGR frame: (boxes int64 [K, 4], crops [K, 1, 32, 32])."""
    import cv2

    from labdata.detector import propose_regions

    return propose_regions(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), crop_size=32)


@functools.lru_cache(maxsize=None)
def expected(k: int, frames: int = 90, score_threshold: float = 0.5) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The grader's own detections of clip ``k``, frame by frame: (boxes float32 [K,4], labels, scores)."""
    from labdata.video import decode_frames

    out = []
    model = classifier()
    for image in decode_frames(clip(k, frames)[0]):
        boxes, crops = propose(image)
        if len(boxes) == 0:
            out.append((np.zeros((0, 4), np.float32), np.zeros(0, np.int64), np.zeros(0, np.float32)))
            continue
        with torch.inference_mode():
            probs = torch.softmax(model(crops), dim=1)
        s, lab = probs.max(dim=1)
        keep = (s >= score_threshold).numpy()
        out.append((boxes.astype(np.float32)[keep], lab.numpy()[keep], s.numpy()[keep]))
    return out


def detections_match(got: tuple, want: tuple, atol: float = 1e-4) -> bool:
    """Same boxes and labels (as sets, any order) and scores within ``atol``."""
    gb, gl, gs = (np.asarray(a) for a in got)
    wb, wl, ws = want
    if gb.reshape(-1, 4).shape != wb.shape or gl.shape != wl.shape:
        return False
    key = lambda b, lab: np.lexsort((lab, b[:, 3], b[:, 2], b[:, 1], b[:, 0]))  # noqa: E731
    gi, wi = key(gb.reshape(-1, 4), gl), key(wb, wl)
    return (np.array_equal(gb.reshape(-1, 4)[gi].astype(np.float32), wb[wi]) and np.array_equal(gl[gi], wl[wi])
            and np.allclose(np.asarray(gs, np.float64)[gi], ws[wi], atol=atol))


# ---------------------------------------------------------------------------------------------------
# The learner's pipeline, run under the grader's own counters
# ---------------------------------------------------------------------------------------------------
@dataclass
class StreamLog:
    """What the grader saw of one stream: releases (by the wrapper) and answers (by the callback)."""

    released: dict[int, float] = field(default_factory=dict)        # index -> release time
    answered: dict[int, float] = field(default_factory=dict)        # index -> time on_result was called
    order: list[int] = field(default_factory=list)                  # indices in the order answered
    results: dict[int, tuple] = field(default_factory=dict)         # index -> (boxes, labels, scores, track_ids)
    carried: list[int] = field(default_factory=list)                # indices whose release_t was not the source's


class Recorder:
    """The grader's callbacks and counters for one run."""

    def __init__(self, keep_results: bool = True):
        self.streams: dict[str, StreamLog] = {}
        self.events: list[Any] = []
        self.keep_results = keep_results
        self.unknown: list[str] = []
        self.duplicates = 0
        self.lock = threading.Lock()
        self.threads: set[int] = set()

    def log(self, name: str) -> StreamLog:
        return self.streams.setdefault(name, StreamLog())

    def on_result(self, r) -> None:
        now = time.perf_counter()
        self.threads.add(threading.get_ident())
        with self.lock:
            name, index = getattr(r, "stream", None), getattr(r, "index", None)
            if name not in self.streams or not isinstance(index, (int, np.integer)):
                self.unknown.append(f"{name!r}/{index!r}")
                return
            log, index = self.streams[name], int(index)
            if index in log.answered:
                self.duplicates += 1
                return
            log.answered[index] = now
            log.order.append(index)
            if index in log.released and abs(float(getattr(r, "release_t", -1.0)) - log.released[index]) > 1e-6:
                log.carried.append(index)
            if self.keep_results:
                log.results[index] = (np.asarray(r.boxes), np.asarray(r.labels), np.asarray(r.scores),
                                      np.asarray(r.track_ids))

    def on_event(self, e) -> None:
        with self.lock:
            self.events.append(e)

    def latencies_ms(self, names=None) -> np.ndarray:
        out = []
        for name, log in self.streams.items():
            if names is None or name in names:
                out += [1000.0 * (t - log.released[i]) for i, t in log.answered.items() if i in log.released]
        return np.asarray(out, np.float64)


def grader_source(learner, name: str, path: Path | None, recorder: Recorder, *, live: bool = True, loops: int = 1,
                  start_delay_s: float = 0.05, fail_after: int | None = None, frames: list | None = None,
                  limit: int | None = None):
    """A source of the grader's own making (the learner's ``Source`` class as its base, so it looks like one).

    It decodes ``path`` with OpenCV itself (or plays ``frames``), releases frame ``i`` at ``start + i / FPS``
    when ``live``, and notes every release in ``recorder`` before the pipeline sees the frame. Faults:
    a missing or corrupt ``path`` raises as the course's sources do; ``fail_after=k`` raises a decoder error
    after ``k`` frames; ``limit=n`` plays only the first ``n`` frames of each loop.
    """
    base = learner.attr("Source")
    frame_cls = learner.attr("SourceFrame")
    log = recorder.log(name)

    class GraderSource(base):
        def __init__(self):
            base.__init__(self, name, fps=FPS, live=live, loops=loops, start_delay_s=start_delay_s)

        def _images(self):
            images = iter(frames) if frames is not None else _decode(path)
            for i, image in enumerate(images):
                if limit is not None and i >= limit:
                    return
                yield image

        def __iter__(self):
            start = time.perf_counter() + start_delay_s
            index = 0
            for _ in range(loops):
                images = self._images()
                while True:
                    if fail_after is not None and index >= fail_after:
                        raise RuntimeError(f"decoder error in {name} at frame {index} (injected by the grader)")
                    t0 = time.perf_counter()
                    image = next(images, None)
                    decode_s = time.perf_counter() - t0
                    if image is None:
                        break
                    if live:
                        release = start + index / FPS
                        wait = release - time.perf_counter()
                        if wait > 0:
                            time.sleep(wait)
                    else:
                        release = time.perf_counter()
                    log.released[index] = release
                    yield frame_cls(name, index, release, image, decode_s)
                    index += 1

    return GraderSource()


def _decode(path: Path):
    """Frames of a video file (uint8 [H, W, 3] BGR); errors as ``labdata.video.decode_frames`` raises them."""
    from labdata.video import decode_frames

    yield from decode_frames(path)


def probe(learner) -> None:
    """``Pipeline.run([])``: the reference refuses it at once (no sources); a stub says what is not written yet,
    before the grader spends seconds generating clips for it."""
    pipe = learner.call("Pipeline", classifier(), learner.call("PipelineConfig"))
    try:
        pipe.run([])
    except NotImplementedError as e:
        raise LearnerError(f"not implemented yet: {e}", not_implemented=True) from None
    except Exception:  # noqa: BLE001 - refusing an empty run is right; other mistakes show in the real run
        pass


def make_sources(learner, n: int, recorder: Recorder, *, frames: int = 90, live: bool = True, loops: int = 1,
                 clips: int = 4, start_delay_s: float = 0.05) -> list:
    """``n`` live streams ``cam00``, ``cam01``, ... cycling over this grade's first ``clips`` clips (their first
    ``frames`` frames, at most 90). A stub's pipeline is refused first (:func:`probe`)."""
    probe(learner)
    return [grader_source(learner, f"cam{i:02d}", clip(i % clips)[0], recorder, live=live, loops=loops,
                          start_delay_s=start_delay_s, limit=frames) for i in range(n)]


def detector_f1(clips: int) -> dict:
    """The grader's own detector on this grade's first ``clips`` clips: pooled tp/fp/fn and F1 (a fraction)."""
    from labdata.detector import evaluate_detections

    tot = {"tp": 0, "fp": 0, "fn": 0}
    for k in range(clips):
        preds = [{"boxes": b, "labels": lab, "scores": s} for b, lab, s in expected(k)]
        e = evaluate_detections(preds, clip(k)[1]["frames"])
        for key in tot:
            tot[key] += e[key]
    p = tot["tp"] / max(tot["tp"] + tot["fp"], 1)
    r = tot["tp"] / max(tot["tp"] + tot["fn"], 1)
    return {**tot, "f1": 2 * p * r / max(p + r, 1e-12)}


@dataclass
class Run:
    """One run of the learner's pipeline: the report it returned, the grader's record, the wall time."""

    report: Any
    recorder: Recorder
    wall_s: float
    threads_left: list[str]


def run_pipeline(learner, sources, recorder: Recorder, *, config: dict | None = None, classifier_model=None,
                 timeout_s: float = 120.0) -> Run:
    """Build the learner's ``Pipeline(classifier, PipelineConfig(**config))`` and run it on ``sources``.

    The run happens on a thread of the grader's, so a pipeline that hangs is abandoned after ``timeout_s`` +
    15 s with a clear failure instead of taking the grade with it.
    """
    config = dict(config or {})
    if torch.cuda.is_available() and "device" not in config:
        config["device"] = "cuda"  # the cuda profile: the classifier on the GPU, decoding and proposals on the CPU
    cfg = learner.call("PipelineConfig", **config)
    model = classifier_model if classifier_model is not None else classifier()
    pipe = learner.call("Pipeline", model, cfg)
    before = set(threading.enumerate())
    box: dict[str, Any] = {}

    def target():
        try:
            box["report"] = pipe.run(sources, on_result=recorder.on_result, on_event=recorder.on_event,
                                     timeout_s=timeout_s)
        except BaseException as e:  # noqa: BLE001 - re-raised on the grader's thread
            box["error"] = e

    t0 = time.perf_counter()
    th = threading.Thread(target=target, name="grader-run", daemon=True)
    th.start()
    th.join(timeout_s + 15.0)
    wall = time.perf_counter() - t0
    if th.is_alive():
        raise LearnerError(f"Pipeline.run did not return within {timeout_s + 15:.0f} s (its own timeout_s was "
                           f"{timeout_s:.0f} s): a stage that never ends, or a join without a timeout")
    if "error" in box:
        e = box["error"]
        if isinstance(e, NotImplementedError):
            raise LearnerError(f"not implemented yet: {e}", not_implemented=True) from None
        raise LearnerError(f"Pipeline.run raised {type(e).__name__}: {str(e)[:300]}") from None
    time.sleep(0.2)
    left = [t.name for t in set(threading.enumerate()) - before if t.is_alive() and t is not th]
    return Run(box.get("report"), recorder, wall, left)


def stream_reports(run: Run) -> dict[str, Any]:
    """The report's per-stream records, checked for shape."""
    streams = getattr(run.report, "streams", None)
    expect(isinstance(streams, dict), f"Pipeline.run must return a PipelineReport whose .streams is a dict by name, "
                                      f"got {type(run.report).__name__}")
    return streams


def accounting_problems(run: Run) -> list[str]:
    """Every way the report's counts disagree with the grader's own: released, answered, dropped."""
    problems = []
    streams = stream_reports(run)
    rec = run.recorder
    if rec.unknown:
        problems.append(f"{len(rec.unknown)} results named a stream or index the grader never released "
                        f"(first: {rec.unknown[0]})")
    if rec.duplicates:
        problems.append(f"{rec.duplicates} frames were answered twice")
    for name, log in rec.streams.items():
        rep = streams.get(name)
        if rep is None:
            problems.append(f"the report has no stream {name!r}")
            continue
        released, answered = len(log.released), len(log.answered)
        stray = set(log.answered) - set(log.released)
        if stray:
            problems.append(f"{name}: {len(stray)} answers for frames never released")
        dropped = int(sum(getattr(rep, "dropped", {}).values()))
        if int(getattr(rep, "frames_in", -1)) != released:
            problems.append(f"{name}: report says frames_in={getattr(rep, 'frames_in', None)}, the source released "
                            f"{released}")
        if int(getattr(rep, "frames_out", -1)) != answered:
            problems.append(f"{name}: report says frames_out={getattr(rep, 'frames_out', None)}, on_result got {answered}")
        if released != answered + dropped:
            problems.append(f"{name}: {released} frames released but {answered} answered + {dropped} counted as "
                            f"dropped: {released - answered - dropped} lost without being counted")
    return problems


def order_problems(run: Run) -> list[str]:
    problems = []
    for name, log in run.recorder.streams.items():
        if log.order != sorted(log.order):
            problems.append(f"{name}: results out of frame order (first at position "
                            f"{next(i for i in range(1, len(log.order)) if log.order[i] < log.order[i - 1])})")
        if log.carried:
            problems.append(f"{name}: {len(log.carried)} results carry a release_t that is not their frame's")
    return problems


# ---------------------------------------------------------------------------------------------------
# The machine's own speed: what the detector costs per frame here, in one thread
# ---------------------------------------------------------------------------------------------------
def frame_cost_ms(frames: int = 30, passes: int = 3) -> float:
    """Milliseconds one thread needs to decode, propose, classify and track one frame of this grade's clip.

    Measured now, on this machine, beside whatever else runs: the unit of the capacity and overload criteria.
    ``passes`` passes over ``frames`` frames after a warm-up; the lowest pass median is kept (the machine at its
    fastest in this window: a neighbour's burst only ever makes a pass slower).
    """
    import cv2

    from labdata.detector import box_iou

    path = clip(0)[0]
    model = classifier()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread's cost: the ceiling multiplies it by the cores
    try:
        _frame_times(path, model, 5, cv2, box_iou)  # warm-up: the classifier's first calls at each batch size
        best = min(float(np.median(_frame_times(path, model, frames, cv2, box_iou))) for _ in range(passes))
    finally:
        torch.set_num_threads(threads)
    return 1000.0 * best


def _frame_times(path, model, frames: int, cv2, box_iou) -> list[float]:
    """Seconds per frame over the first ``frames`` frames of ``path``, decode to tracking."""
    times = []
    cap = cv2.VideoCapture(str(path))
    prev = np.zeros((0, 4))
    try:
        for _ in range(frames):
            t0 = time.perf_counter()
            ok, image = cap.read()
            if not ok:
                break
            boxes, crops = propose(image)
            if len(boxes):
                with torch.inference_mode():
                    model(crops).softmax(1).max(1)
            box_iou(prev, boxes)
            prev = boxes
            times.append(time.perf_counter() - t0)
    finally:
        cap.release()
    return times


def call_quiet(fn: Callable, *args, **kwargs):
    """Call a learner object, turning NotImplementedError into a stub's failure."""
    try:
        return fn(*args, **kwargs)
    except NotImplementedError as e:
        raise LearnerError(f"not implemented yet: {e}", not_implemented=True) from None
