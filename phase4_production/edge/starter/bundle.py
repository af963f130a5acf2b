"""Task 4.8: a deployable bundle, one folder that runs on the device as it is.

Whatever the device needs must be in the folder: the models, the code that runs them, the versions of the
packages it was tested with, and the instructions. Nothing from the development machine: no torch, no course
package, no cached file. The grader runs the folder exactly as ``build_bundle`` leaves it, in a process that
cannot import torch or read outside the folder.

Guide: EDGE_DEPLOYMENT_GUIDE.md#task-48-a-deployable-bundle
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np

from ..models import calibration_crops, edge_frames, original_classifier, small_classifier
from ..packaging import RUNNER_SCRIPT, bundle_readme, copy_support_files, pinned_requirements
from ..protocol import BUNDLE_FORMAT, MANIFEST
from .export import export_onnx, quantize_int8
from .runtime import EdgeRunner

__all__ = ["build_bundle", "VARIANTS"]

#: The reference's ladder: (name, model file, proposal scale), best quality first.
VARIANTS = (
    ("fp32", "models/original_fp32.onnx", 1.0),
    ("int8", "models/original_int8.onnx", 1.0),
    ("small", "models/small_int8.onnx", 1.0),
    ("small_half", "models/small_int8.onnx", 0.5),
)


def _relative_costs(folder: Path, frames: np.ndarray) -> list[float]:
    """Median time per frame of each variant over the first one's, one thread (helper, written in full)."""
    runner = EdgeRunner(folder, threads=1)
    runner.warm_up(frames[0])
    medians = []
    for name in runner.variants:
        times = []
        for frame in frames:
            t0 = time.perf_counter()
            runner.detect(frame, name)
            times.append(time.perf_counter() - t0)
        medians.append(float(np.median(times)))
    return [round(m / medians[0], 3) for m in medians]


# -----------------------------------------------------------------------------------------------
# ## Task 4.8: the bundle
# -----------------------------------------------------------------------------------------------
def build_bundle(out_dir: str | Path) -> Path:
    """Write a self-contained edge bundle into ``out_dir`` (replacing what is there).

    Args:
        out_dir: the bundle folder to write.

    Returns:
        ``out_dir`` as a Path, holding ``bundle.json`` (format ``protocol.BUNDLE_FORMAT``, variants best first,
        the first one the original model in FP32), ``runner.py`` (``packaging.RUNNER_SCRIPT``), ``runtime.py`` and
        ``controller.py`` (yours, copied from this folder), ``protocol.py`` and ``proposals.py``
        (``packaging.copy_support_files``), ``models/*.onnx``, ``requirements.txt`` (``pinned_requirements``,
        no torch) and ``README.md`` (``bundle_readme``).

    Tolerance the grader applies (p4.edge.bundle): every file above present, the folder under the size budget,
    requirements without torch, the README covering Jetson and Raspberry Pi, and the runner answering a short clip
    under the edge profile (one core, no torch, no file outside the folder) with the first variant's detections
    equal to the course detector's.

    Guide: EDGE_DEPLOYMENT_GUIDE.md#task-48-a-deployable-bundle
    """
    # 1. Start from an empty out_dir/models/. Export the original classifier (FP32) and an INT8 copy
    #    (export_onnx, quantize_int8 with calibration_crops()); add a cheaper rung (small_classifier() in INT8).
    # 2. Copy runtime.py and controller.py from this folder (Path(__file__).parent); copy_support_files(out);
    #    write runner.py (RUNNER_SCRIPT), requirements.txt (pinned_requirements()), README.md (bundle_readme).
    # 3. Write bundle.json: {"format": BUNDLE_FORMAT, "entry": "runner.py", "variants": [{"name", "model",
    #    "proposal_scale", "relative_cost"}, ...]} best first; measure relative_cost with _relative_costs on
    #    edge_frames(seed=7001, frames=40) and write it again.
    raise NotImplementedError("Task 4.8: see EDGE_DEPLOYMENT_GUIDE.md#task-48-a-deployable-bundle")
