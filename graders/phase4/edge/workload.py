"""What the edge criteria share: the learner's bundle (built once per grade), fresh clips, the grader's own
FP32 detector, and the live run with a slowdown that four criteria read.

Clips come from ``labdata.video`` with a seed drawn afresh for each grade. The grader's FP32 detector is the
course detector (``labdata.detector``) with the catalog's ``digits_resnet18`` fed the 32x32 crops, loaded by the
grader itself, never through the submission's copy of ``phase4_production/edge/models.py``.
"""
from __future__ import annotations

import functools
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ...harness import threads
from ...submission import SubmissionError
from .device import DEADLINE_MS, DeviceRun, run_on_device

FPS = 30.0
WIDTH, HEIGHT = 320, 240
SEED = secrets.randbelow(10**6)
#: The live run: normal, then slowed, then recovered (seconds); quick mode shortens each part.
NORMAL_S, SLOW_S, AFTER_S = 8.0, 5.0, 4.0
QUICK_NORMAL_S, QUICK_SLOW_S, QUICK_AFTER_S = 4.0, 3.5, 3.0
#: The first frames of the run are not graded for latency (the process settles after its ready line).
SETTLE_S = 0.5


class CropClassifier(torch.nn.Module):
    """The grader's own copy of the edge part's crop wrapper: 1x32x32 crops to a 3x64x64 model."""

    def __init__(self, model: torch.nn.Module, size: int = 64):
        super().__init__()
        self.model, self.size = model, size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.nn.functional.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        return self.model(x.expand(-1, 3, -1, -1))


@functools.lru_cache(maxsize=1)
def original() -> torch.nn.Module:
    """The original model in FP32, loaded by the grader from the catalog."""
    from labdata import catalog

    return CropClassifier(catalog.get("digits_resnet18").model.eval()).eval()


@functools.lru_cache(maxsize=None)
def clip(k: int, frames: int) -> tuple[np.ndarray, list[dict]]:
    """Clip ``k`` of this grade: (frames uint8 [T, 240, 320, 3] BGR, ground-truth frames)."""
    from labdata.video import VideoConfig, generate_clip, read_ground_truth, read_video

    folder = Path(tempfile.mkdtemp(prefix="p4-edge-clips-"))
    paths = generate_clip(VideoConfig(frames=frames, fps=FPS, width=WIDTH, height=HEIGHT, num_objects=4,
                                      seed=SEED + 7919 * k, max_speed=3.0), folder, stem=f"clip{k}")
    return read_video(paths.video), read_ground_truth(paths.ground_truth)["frames"]


def fp32_detections(frames: np.ndarray) -> list[dict]:
    """The course detector with the original FP32 model on every frame (numpy boxes, labels, scores)."""
    from labdata.detector import DigitsDetector

    det = DigitsDetector(original())
    out = []
    # one thread: two OpenMP threads on a machine where something else holds a core wait for each other at every
    # operator (a 10x slowdown beside a busy neighbour); one thread costs about 20 ms a frame
    with threads(1), torch.inference_mode():
        for f in frames:
            d = det.detect_bgr(f)
            out.append({k: v.numpy() for k, v in d.items()})
    return out


def answers_as_predictions(run: DeviceRun) -> list[dict]:
    """Per frame, what the bundle answered (an unanswered frame predicts nothing)."""
    empty = {"boxes": np.zeros((0, 4)), "labels": np.zeros(0, np.int64), "scores": np.zeros(0)}
    preds = []
    for i in range(run.frames):
        if i not in run.answers:
            preds.append(empty)
            continue
        msg = run.answers[i][1]
        try:
            boxes = np.asarray(msg.get("boxes", []), np.float64).reshape(-1, 4)
            labels = np.asarray(msg.get("labels", []), np.int64).reshape(-1)
            scores = np.asarray(msg.get("scores", []), np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise SubmissionError(f"frame {i}'s answer has boxes/labels/scores that are not [K, 4], [K], [K] numbers") from None
        if not len(boxes) == len(labels) == len(scores):
            raise SubmissionError(f"frame {i}'s answer has {len(boxes)} boxes, {len(labels)} labels and {len(scores)} "
                                  f"scores")
        preds.append({"boxes": boxes, "labels": labels, "scores": scores})
    return preds


_BUNDLES: dict[int, Path] = {}


def bundle(learner) -> Path:
    """The learner's bundle, built once per grade into a folder of the grader's (``build_bundle``)."""
    key = id(learner.module)
    if key not in _BUNDLES:
        out = Path(tempfile.mkdtemp(prefix="p4-edge-")) / "bundle"
        got = learner.call("build_bundle", out)
        folder = Path(got) if isinstance(got, (str, Path)) else out
        if not (folder / "bundle.json").is_file():
            raise SubmissionError(f"build_bundle wrote no bundle.json into {folder}")
        _BUNDLES[key] = folder
    return _BUNDLES[key]


def ready_or_fail(run: DeviceRun) -> None:
    """A run whose runner never said it was ready is the bundle's failure, with the reason."""
    if run.ready is None:
        why = run.why_not_ready() or f"exit code {run.returncode}"
        raise SubmissionError(f"the bundle's runner never printed its ready line under the edge profile: {why}")


@dataclass
class LiveRun:
    """The live run with a slowdown, and where its parts lie (seconds after the start)."""

    run: DeviceRun
    gt: list[dict]
    frames: np.ndarray
    normal: tuple[float, float]
    slow: tuple[float, float]
    after: tuple[float, float]

    def missed(self, idx: list[int]) -> int:
        return sum(1 for i in idx if not self.run.latency_ms(i) <= DEADLINE_MS)


_LIVE: dict[tuple[int, bool], LiveRun] = {}


def live_run(learner, quick: bool) -> LiveRun:
    """The bundle on a fresh live 30 FPS clip: normal, slowed (busy processes on its core), recovered; once a grade."""
    key = (id(learner.module), quick)
    if key not in _LIVE:
        normal, slow, after = (QUICK_NORMAL_S, QUICK_SLOW_S, QUICK_AFTER_S) if quick else (NORMAL_S, SLOW_S, AFTER_S)
        total = normal + slow + after
        frames, gt = clip(100, int(total * FPS))
        run = run_on_device(bundle(learner), frames, fps=FPS, slow=(normal, normal + slow, 0), timeout_s=total + 120)
        ready_or_fail(run)
        _LIVE[key] = LiveRun(run, gt, frames, (SETTLE_S, normal), (normal, normal + slow), (normal + slow, total))
    return _LIVE[key]
