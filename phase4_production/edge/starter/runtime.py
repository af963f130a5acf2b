"""Tasks 4.8 and 4.9: the runtime that runs inside the bundle, on the device, without torch.

This file runs in two places: here, in the course (``phase4_production.edge.<impl>.runtime``), and inside a
bundle, where ``build_bundle`` copies it next to ``protocol.py``, ``proposals.py`` and ``controller.py`` and
``runner.py`` starts it. It may import only the standard library, numpy, OpenCV (``cv2``) and ONNX Runtime: the
grader blocks ``import torch`` in the bundle's process, and any read of a file outside the bundle's folder.

Guide: EDGE_DEPLOYMENT_GUIDE.md#task-48-a-deployable-bundle
"""
from __future__ import annotations

import collections
import sys
import threading
import time
from pathlib import Path
from typing import BinaryIO

import numpy as np

try:  # in the course
    from ..protocol import encode_result, load_manifest, read_frame, ready_line
    from labdata.proposals import propose_crops
    from .controller import AdaptiveController
except ImportError:  # in a bundle: the files sit side by side (see build_bundle)
    from protocol import encode_result, load_manifest, read_frame, ready_line  # type: ignore[no-redef]
    from proposals import propose_crops  # type: ignore[no-redef]
    from controller import AdaptiveController  # type: ignore[no-redef]

__all__ = ["EdgeRunner", "main", "SCORE_THRESHOLD"]

#: Detections whose class probability is below this are dropped (the Phase 4 detector's threshold).
SCORE_THRESHOLD = 0.5


class EdgeRunner:
    """The bundle's models, loaded once, and the frame loop.

    Args:
        folder: the bundle folder (holds ``bundle.json``).
        threads: ONNX Runtime intra-op threads (1 on the device: one core).

    Raises:
        protocol.ManifestError: a bad ``bundle.json``.

    Attributes (helpers, read them):
        manifest: the checked manifest; ``variants`` are its variant names, best first.
        sessions: variant name -> ``onnxruntime.InferenceSession``.
    """

    def __init__(self, folder: str | Path, *, threads: int = 1):
        import onnxruntime as ort

        self.manifest = load_manifest(folder)
        self.variants = [v.name for v in self.manifest.variants]
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self.sessions = {v.name: ort.InferenceSession(str(self.manifest.folder / v.model), options,
                                                      providers=["CPUExecutionProvider"])
                         for v in self.manifest.variants}

    def warm_up(self, frame: np.ndarray, rounds: int = 3) -> None:
        """Run every variant on ``frame`` and every session on 1 to 4 crops, a few times (first runs allocate;
        helper, written in full)."""
        for name in self.variants:
            for _ in range(rounds):
                self.detect(frame, name)
                for k in range(1, 5):
                    self.sessions[name].run(None, {"crops": np.zeros((k, 1, 32, 32), np.float32)})

    # -----------------------------------------------------------------------------------------------
    # ## Task 4.8: one frame, one variant
    # -----------------------------------------------------------------------------------------------
    def detect(self, frame: np.ndarray, variant: str) -> dict[str, np.ndarray]:
        """Detect digits in one frame with one variant.

        Args:
            frame: uint8 [H, W, 3] BGR.
            variant: a name in ``self.variants``.

        Returns:
            ``boxes`` float32 [K, 4] (x1, y1, x2, y2 in *frame* pixels, x2/y2 exclusive), ``labels`` int64 [K],
            ``scores`` float32 [K] (softmax probability of the label; only those >= ``SCORE_THRESHOLD``).

        Raises:
            KeyError: an unknown variant.

        Tolerance the grader applies (p4.edge.bundle, p4.edge.accuracy): the first variant's detections are the
        course detector's on the same frame (same boxes, labels for at least 97 % of them); accuracy is scored
        against the clip's ground truth.

        Guide: EDGE_DEPLOYMENT_GUIDE.md#task-48-a-deployable-bundle
        """
        # 1. v = self.manifest.variant(variant); grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), resized by
        #    v.proposal_scale (INTER_AREA) when it is not 1.
        # 2. boxes, crops = propose_crops(grey); no boxes -> empty arrays of the right dtypes.
        # 3. logits = self.sessions[variant].run(None, {"crops": crops})[0]; softmax; keep score >= SCORE_THRESHOLD.
        # 4. Scale the boxes back to frame pixels (divide by v.proposal_scale).
        raise NotImplementedError("Task 4.8: see EDGE_DEPLOYMENT_GUIDE.md#task-48-a-deployable-bundle")

    # -----------------------------------------------------------------------------------------------
    # ## Task 4.9: the live loop
    # -----------------------------------------------------------------------------------------------
    def serve(self, inp: BinaryIO, out: BinaryIO, controller: AdaptiveController | None = None,
              *, variant: str | None = None) -> dict[str, int]:
        """Answer frames from ``inp`` on ``out`` until the input ends, never falling behind a live camera.

        Args:
            inp: the frame pipe (``protocol.read_frame``); frames arrive on the camera's clock.
            out: where answers go (``protocol.encode_result`` lines), flushed after each.
            controller: picks the variant of each frame (``choose()``) and is told what it cost (``observe``).
            variant: run this variant for every frame instead (no controller): for measuring one variant.

        Returns:
            ``{"answered": n, "dropped": m}``: every frame read is one or the other.

        Raises:
            ValueError: neither or both of ``controller`` and ``variant``.

        A reader thread takes frames off the pipe as they come and keeps only the newest ``2`` (older ones are
        dropped: their answer would be late anyway); the loop answers the oldest of those at once, so a slow frame
        costs drops, never a growing delay. Each answer carries the variant that made it and its compute time.

        Tolerance the grader applies (p4.edge.deadline): on the live 30 FPS clip, at least 99 % of frames answered
        and p99 latency (release to answer, the grader's clock) under 50 ms.

        Guide: EDGE_DEPLOYMENT_GUIDE.md#task-49-meet-the-deadline
        """
        # 1. A reader thread: read_frame(inp) until None; append (index, frame) to a deque under a Condition;
        #    keep only the newest 2 (count the others in counts["dropped"]); notify; mark the end.
        # 2. The loop: wait for a frame or the end; pop the oldest waiting one and note the backlog;
        #    name = variant or controller.choose(); time self.detect(frame, name) with time.perf_counter().
        # 3. out.write(encode_result(...)); out.flush(); controller.observe(name, ms, backlog).
        # 4. Join the reader; re-raise its error if it had one; return the counts.
        raise NotImplementedError("Task 4.9: see EDGE_DEPLOYMENT_GUIDE.md#task-49-meet-the-deadline")


def main(argv: list[str] | None = None) -> int:
    """The bundle's entry point (``python runner.py [--variant NAME]``; helper, written in full).

    Loads the bundle it sits in, warms up, prints the ready line, then serves stdin to stdout with the adaptive
    controller (or one fixed variant). Exit code 0 at the end of input, 2 on a bad manifest or argument.
    """
    import argparse

    parser = argparse.ArgumentParser(description="Run this edge bundle: frames on stdin, answers on stdout.")
    parser.add_argument("--variant", help="run this variant for every frame (no adaptation)")
    args = parser.parse_args(argv)
    folder = Path(sys.argv[0]).resolve().parent if argv is None else Path.cwd()
    runner = EdgeRunner(folder, threads=1)
    if args.variant is not None and args.variant not in runner.variants:
        print(f"unknown variant {args.variant!r}; this bundle has {runner.variants}", file=sys.stderr)
        return 2
    runner.warm_up(np.full((240, 320, 3), 40, np.uint8))
    out = sys.stdout.buffer
    out.write(ready_line(runner.variants))
    out.flush()
    controller = None if args.variant else AdaptiveController(
        runner.variants, [v.relative_cost for v in runner.manifest.variants])
    runner.serve(sys.stdin.buffer, out, controller, variant=args.variant)
    return 0
