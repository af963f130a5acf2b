"""Configuration, results, reports and errors shared by every task of Phase 4's ``pipeline`` part.

Helpers, written in full. The graders and the command line read these classes by attribute name: keep the
names, fields and units as they are. Times are ``time.perf_counter()`` seconds unless a name ends in
``_ms``; boxes are pixels ``(x1, y1, x2, y2)`` with x2/y2 exclusive, as ``labdata.video`` writes them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

__all__ = [
    "PipelineConfig",
    "SourceFrame",
    "Preprocessed",
    "Detections",
    "FrameResult",
    "Event",
    "StageStats",
    "StreamReport",
    "PipelineReport",
    "PipelineError",
    "QueueClosed",
    "STAGES",
]

#: The pipeline's stages, in the order a frame goes through them (the names reports and plots use).
STAGES = ("decode", "preprocess", "inference", "track")


@dataclass(frozen=True)
class PipelineConfig:
    """How a :class:`Pipeline` is built (every field has a sensible default).

    Attributes:
        queue_size: frames the ingress queue holds (decoded, waiting for preprocessing), all streams
            together (>= 1). When it is full the overload policy decides (Task 4.4).
        policy: the overload policy: ``"drop_oldest"`` (evict the oldest waiting frame, so latency stays
            bounded) or ``"block"`` (the source waits: nothing is dropped, latency grows without bound;
            the right choice for files, never for live cameras).
        preprocess_workers: threads running region proposal (>= 1).
        max_batch_crops: most crops in one classifier forward (>= 1); a batch is sent as soon as it is
            this big, or ``max_wait_ms`` after its first frame arrived.
        max_wait_ms: longest a frame waits for others to share its batch, in ms (>= 0).
        score_threshold: detections whose class probability is below it are dropped (0..1).
        iou_min: smallest IoU at which a detection continues a track (0..1).
        max_age: frames a track survives unseen before it is closed (a ``leave`` event) (>= 0).
        line_x: the x coordinate of the counting line as a fraction of the frame width (0..1): a track whose
            box centre moves across it makes a ``cross`` event.
        stall_timeout_s: a stage busy with one item for longer than this is stalled: the run stops,
            reports the stage, and counts the frames it could not finish (> 0).
        optimized: use :func:`optimize_classifier`'s model (INT8) instead of the FP32 classifier.
        device: where the classifier runs: ``"cpu"`` or ``"cuda"`` / ``"cuda:N"`` (decoding and region proposal
            stay on the CPU; crops go to the device in one copy per batch).
        keep_images: hand each frame's image to ``on_result`` (``FrameResult.image``), for annotation;
            False keeps memory flat (the image is let go once its crops are cut).
    """

    queue_size: int = 32
    policy: str = "drop_oldest"
    preprocess_workers: int = 2
    max_batch_crops: int = 64
    max_wait_ms: float = 5.0
    score_threshold: float = 0.5
    iou_min: float = 0.2
    max_age: int = 20
    line_x: float = 0.5
    stall_timeout_s: float = 10.0
    optimized: bool = False
    device: str = "cpu"
    keep_images: bool = False

    def __post_init__(self) -> None:
        if int(self.queue_size) < 1:
            raise ValueError(f"queue_size must be >= 1, got {self.queue_size}")
        if self.policy not in ("drop_oldest", "block"):
            raise ValueError(f"policy must be 'drop_oldest' or 'block', got {self.policy!r}")
        if int(self.preprocess_workers) < 1 or int(self.max_batch_crops) < 1:
            raise ValueError(f"preprocess_workers and max_batch_crops must be >= 1, got {self.preprocess_workers} "
                             f"and {self.max_batch_crops}")
        if not self.max_wait_ms >= 0 or not self.stall_timeout_s > 0:
            raise ValueError(f"max_wait_ms must be >= 0 and stall_timeout_s > 0, got {self.max_wait_ms} "
                             f"and {self.stall_timeout_s}")
        for name in ("score_threshold", "iou_min", "line_x"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in 0..1, got {getattr(self, name)!r}")
        if int(self.max_age) < 0:
            raise ValueError(f"max_age must be >= 0, got {self.max_age}")
        if not (self.device == "cpu" or str(self.device).startswith("cuda")):
            raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {self.device!r}")


@dataclass
class SourceFrame:
    """One decoded frame as a source releases it (see ``sources.py``).

    Attributes:
        stream: the source's name (unique within a run).
        index: the frame's position in its stream, 0, 1, 2, ...
        release_t: when the source released it (``time.perf_counter()``): a live source releases frame
            ``i`` at ``start + i / fps``. End-to-end latency is measured from here.
        image: uint8 [H, W, 3] BGR, as OpenCV decodes it; a stage may set it to None once it is not needed
            (the size stays in ``size``).
        decode_s: seconds the source spent decoding this frame (the ``decode`` stage's work, waiting excluded).
        size: (width, height) in pixels, filled in from ``image``.
    """

    stream: str
    index: int
    release_t: float
    image: np.ndarray | None
    decode_s: float = 0.0
    size: tuple[int, int] = (0, 0)

    def __post_init__(self) -> None:
        if self.image is not None and self.size == (0, 0):
            self.size = (int(self.image.shape[1]), int(self.image.shape[0]))


@dataclass
class Preprocessed:
    """A frame after region proposal: what the inference stage batches.

    Attributes:
        frame: the frame (its image may be dropped to save memory once the crops are cut).
        boxes: int64 [K, 4], the proposals' ink boxes.
        crops: float32 [K, 1, 32, 32], normalised like ``labdata.digits.load_split``; K may be 0.
    """

    frame: SourceFrame
    boxes: np.ndarray
    crops: torch.Tensor


@dataclass
class Detections:
    """What the detector found in one frame (K detections, K may be 0).

    Attributes:
        boxes: float32 [K, 4] pixels (x1, y1, x2, y2).
        labels: int64 [K], digit classes 0..9.
        scores: float32 [K], class probabilities (0..1), each >= the score threshold.
    """

    boxes: np.ndarray
    labels: np.ndarray
    scores: np.ndarray

    @staticmethod
    def empty() -> "Detections":
        return Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.int64), np.zeros(0, np.float32))

    def __len__(self) -> int:
        return int(len(self.labels))


@dataclass
class FrameResult:
    """One frame's output, handed to ``on_result`` in frame order within its stream.

    Attributes:
        stream, index, release_t: the frame's, carried through every stage unchanged.
        boxes, labels, scores: as in :class:`Detections`.
        track_ids: int64 [K], the track of each detection (>= 0; the same object keeps its id).
        done_t: when the result was complete (``time.perf_counter()``), after tracking.
        image: the frame, uint8 [H, W, 3] BGR, when ``PipelineConfig.keep_images``; otherwise None.
    """

    stream: str
    index: int
    release_t: float
    boxes: np.ndarray
    labels: np.ndarray
    scores: np.ndarray
    track_ids: np.ndarray
    done_t: float
    image: np.ndarray | None = None

    @property
    def latency_ms(self) -> float:
        """End-to-end latency, frame release to result, in ms."""
        return 1000.0 * (self.done_t - self.release_t)


@dataclass
class Event:
    """Something a person would be told about, written as one JSON line.

    Attributes:
        type: ``"enter"`` (a new track), ``"leave"`` (a track unseen for more than ``max_age`` frames, or
            still open when its stream ends) or ``"cross"`` (the box centre moved across the counting line).
        stream, frame: where it happened (``frame`` is the frame index; for ``leave``, the last frame the
            track was seen in).
        track_id, label: the track and its digit (the label it was most often detected as).
        direction: for ``cross``: ``"left_to_right"`` or ``"right_to_left"``; otherwise None.
    """

    type: str
    stream: str
    frame: int
    track_id: int
    label: int
    direction: str | None = None

    def to_json(self) -> dict[str, Any]:
        d = {"type": self.type, "stream": self.stream, "frame": int(self.frame), "track_id": int(self.track_id),
             "label": int(self.label)}
        if self.direction is not None:
            d["direction"] = self.direction
        return d


@dataclass
class StageStats:
    """Where one stage spent its time.

    Attributes:
        name: one of :data:`STAGES`.
        items: items the stage finished (frames; for ``inference``, batches).
        busy_s: seconds the stage's threads spent working (not waiting), all threads together.
        p50_ms, p99_ms: per-item time, in ms.
        threads: threads running the stage.
    """

    name: str
    items: int
    busy_s: float
    p50_ms: float
    p99_ms: float
    threads: int

    @staticmethod
    def from_times(name: str, times_s: list[float], threads: int) -> "StageStats":
        """Summarise per-item durations (seconds) of one stage."""
        if not times_s:
            return StageStats(name, 0, 0.0, math.nan, math.nan, threads)
        a = np.asarray(times_s, np.float64) * 1000.0
        return StageStats(name, len(a), float(a.sum()) / 1000.0, float(np.percentile(a, 50)),
                          float(np.percentile(a, 99)), threads)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "items": self.items, "busy_s": round(self.busy_s, 4),
                "p50_ms": None if math.isnan(self.p50_ms) else round(self.p50_ms, 3),
                "p99_ms": None if math.isnan(self.p99_ms) else round(self.p99_ms, 3), "threads": self.threads}


@dataclass
class StreamReport:
    """What happened to one stream.

    Every frame the source released is either a result or a drop: ``frames_in == frames_out + dropped``
    once the run is over (the grader counts both itself and compares).

    Attributes:
        name: the stream's name.
        frames_in: frames its source released.
        frames_out: results handed to ``on_result``.
        dropped: frames released but never answered, by reason: ``"overload"`` (evicted by the overload
            policy), ``"error"`` (a stage failed on it), ``"stalled"`` (the run stopped on a stalled stage).
        error: None, or what went wrong with the stream (``"VideoDecodeError: ..."``); the other streams go on.
        completed: True once every released frame is accounted for.
    """

    name: str
    frames_in: int = 0
    frames_out: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    completed: bool = False

    @property
    def dropped_total(self) -> int:
        return int(sum(self.dropped.values()))

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "frames_in": self.frames_in, "frames_out": self.frames_out,
                "dropped": dict(self.dropped), "error": self.error, "completed": self.completed}


@dataclass
class PipelineReport:
    """What :meth:`Pipeline.run` returns.

    Attributes:
        streams: one :class:`StreamReport` per source, by name, in the sources' order.
        stages: one :class:`StageStats` per stage, by name (:data:`STAGES`).
        wall_s: seconds from the start of the run to its end.
        stalled: None, or the name of the stage that stalled (the run then stopped early).
        batches: classifier forwards; ``crops``: crops classified, all batches together.
    """

    streams: dict[str, StreamReport]
    stages: dict[str, StageStats]
    wall_s: float
    stalled: str | None = None
    batches: int = 0
    crops: int = 0

    @property
    def frames_in(self) -> int:
        return sum(s.frames_in for s in self.streams.values())

    @property
    def frames_out(self) -> int:
        return sum(s.frames_out for s in self.streams.values())

    @property
    def dropped(self) -> int:
        return sum(s.dropped_total for s in self.streams.values())

    def to_json(self) -> dict[str, Any]:
        return {"wall_s": round(self.wall_s, 4), "stalled": self.stalled, "batches": self.batches,
                "crops": self.crops, "frames_in": self.frames_in, "frames_out": self.frames_out,
                "dropped": self.dropped, "streams": [s.to_json() for s in self.streams.values()],
                "stages": [s.to_json() for s in self.stages.values()]}


class PipelineError(RuntimeError):
    """The pipeline cannot run as asked (bad sources, a run already in progress)."""


class QueueClosed(RuntimeError):
    """``get`` on a closed queue that has nothing left, or ``put`` on a closed queue."""
