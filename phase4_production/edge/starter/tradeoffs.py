"""Task 4.11: the edge trade-off report, every variant measured on the same clip.

Choosing what to ship on a device is choosing a point on a curve: accuracy against latency, memory, size and
energy. The table measures each variant of the bundle the same way; the Pareto front keeps only the variants no
other variant beats on every axis at once: the ladder an adaptive controller should climb.

Guide: EDGE_DEPLOYMENT_GUIDE.md#task-411-the-trade-off-report
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .runtime import EdgeRunner

__all__ = ["tradeoff_table", "pareto_front", "ROW_KEYS"]

#: What every row of the table holds.
ROW_KEYS = ("variant", "f1", "latency_ms", "p99_ms", "cpu_ms_per_frame", "model_bytes", "memory_mb")


def _rss_mb() -> float:
    """This process's resident memory in MiB (helper, written in full)."""
    import psutil

    return psutil.Process(os.getpid()).memory_info().rss / 2**20


# -----------------------------------------------------------------------------------------------
# ## Task 4.11: measure, then keep what is not dominated
# -----------------------------------------------------------------------------------------------
def tradeoff_table(folder: str | Path, frames: np.ndarray, ground_truth: Sequence[dict]) -> list[dict[str, Any]]:
    """Measure every variant of a bundle on the same frames, one thread, one after another.

    Args:
        folder: a bundle folder (``build_bundle``).
        frames: uint8 [T, H, W, 3] BGR frames of a clip.
        ground_truth: the clip's ground-truth ``frames`` list (``labdata.video.read_ground_truth(...)["frames"]``).

    Returns:
        One dict per variant, in the manifest's order, with the keys of ``ROW_KEYS``: ``f1`` (detection F1 on the
        clip, ``labdata.detector.evaluate_detections``), ``latency_ms`` and ``p99_ms`` (median and 99th percentile
        wall time per frame), ``cpu_ms_per_frame`` (CPU time per frame: the energy proxy), ``model_bytes`` (size
        of the variant's model file) and ``memory_mb`` (resident memory the variant's session adds once loaded and
        run).

    Tolerance the grader applies (p4.edge.tradeoffs): a row per variant; ``f1`` within 0.03 of the grader's run of
    that variant under the edge profile; ``model_bytes`` exact; latencies in the same order as the grader's.

    Guide: EDGE_DEPLOYMENT_GUIDE.md#task-411-the-trade-off-report
    """
    # 1. runner = EdgeRunner(folder, threads=1) (note the RSS before and after: _rss_mb()); warm it up.
    # 2. Per variant: time runner.detect on every frame (time.perf_counter per frame, time.process_time around
    #    the loop); score the predictions with labdata.detector.evaluate_detections(preds, ground_truth).
    # 3. A row per variant with every key of ROW_KEYS (model_bytes: the file's st_size).
    raise NotImplementedError("Task 4.11: see EDGE_DEPLOYMENT_GUIDE.md#task-411-the-trade-off-report")


def pareto_front(rows: Sequence[dict[str, Any]], *, quality: str = "f1",
                 costs: Sequence[str] = ("latency_ms", "memory_mb", "model_bytes")) -> list[str]:
    """The variants no other variant dominates.

    Args:
        rows: ``tradeoff_table`` rows.
        quality: the key where higher is better.
        costs: the keys where lower is better.

    Returns:
        Names of the non-dominated variants, in the rows' order. Row ``a`` dominates ``b`` when it is at least as
        good on ``quality`` and every cost, and strictly better on at least one.

    Raises:
        KeyError: a row lacks ``variant``, ``quality`` or a cost.

    Tolerance the grader applies (p4.edge.tradeoffs): exactly the grader's front, on your rows and on rows it
    draws at random (ties included).

    Guide: EDGE_DEPLOYMENT_GUIDE.md#task-411-the-trade-off-report
    """
    # For each row: dominated if another row is <= on every axis (negate quality so lower is better everywhere)
    # and differs on at least one. Keep the names of the rest, in order.
    raise NotImplementedError("Task 4.11: see EDGE_DEPLOYMENT_GUIDE.md#task-411-the-trade-off-report")
