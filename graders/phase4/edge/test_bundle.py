"""Task 4.8: the bundle is one self-contained folder that runs under the edge profile as it is.

The grader checks the folder (files, pinned torch-free requirements, a README for Jetson and Raspberry Pi, its
size), runs it on a short clip in lockstep in the edge process (one core, no torch, nothing read outside the
folder), and compares the first variant's detections with the course detector's in FP32 on the same frames.
It also reads the process's peak resident memory during the live run (``p4.edge.footprint``).
"""
from __future__ import annotations

import re

import numpy as np

from ...plugin import criterion
from .device import run_on_device
from .workload import bundle, clip, fp32_detections, live_run, ready_or_fail

REQUIRED = ("bundle.json", "requirements.txt", "README.md")
LABEL_AGREE = 0.97
BOX_ATOL = 1.0
#: Size budget of the bundle folder on disk, MiB (EXPECTED_OUTCOMES.md, CALIBRATION.md).
SIZE_BUDGET_MB = 80.0


def folder_mb(folder) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20


def folder_problems(folder) -> list[str]:
    problems = [f"{name} is missing from the bundle" for name in REQUIRED if not (folder / name).is_file()]
    req = folder / "requirements.txt"
    if req.is_file():
        lines = [ln.split("#")[0].strip() for ln in req.read_text().splitlines()]
        lines = [ln for ln in lines if ln]
        if any(re.match(r"(torch|torchvision|executorch|torchao)\b", ln, re.I) for ln in lines):
            problems.append("requirements.txt names torch: the device runs without it")
        unpinned = [ln for ln in lines if "==" not in ln]
        if unpinned or not lines:
            problems.append(f"requirements.txt must pin every package with ==; not pinned: {unpinned or 'nothing listed'}")
    readme = folder / "README.md"
    if readme.is_file():
        text = readme.read_text().lower()
        for word, what in (("jetson", "NVIDIA Jetson"), ("raspberry", "Raspberry Pi")):
            if word not in text:
                problems.append(f"README.md does not say how to run the bundle on a {what}")
    links = [p for p in folder.rglob("*") if p.is_symlink()]
    if links:
        problems.append(f"the bundle holds symbolic links ({links[0].name}): a copied folder would lose what they point to")
    return problems


def matches(got: dict, want: dict) -> tuple[int, int]:
    """(boxes of ``want`` found in ``got`` with the same label, boxes in ``want``)."""
    if not len(want["boxes"]):
        return 0, 0
    gb = np.asarray(got["boxes"], np.float64).reshape(-1, 4)
    hit = 0
    for box, label in zip(np.asarray(want["boxes"], np.float64), want["labels"]):
        close = np.flatnonzero(np.abs(gb - box).max(axis=1) <= BOX_ATOL) if len(gb) else []
        hit += any(int(got["labels"][j]) == int(label) for j in close)
    return hit, len(want["boxes"])


@criterion("p4.edge.bundle")
def test_bundle(grade, learner):
    folder = bundle(learner)
    problems = folder_problems(folder)
    size = folder_mb(folder)
    if size > SIZE_BUDGET_MB:
        problems.append(f"the bundle is {size:.1f} MiB on disk (budget {SIZE_BUDGET_MB:.0f} MiB)")
    frames, _ = clip(3, 30)
    run = run_on_device(folder, frames, fps=None, timeout_s=150)
    ready_or_fail(run)
    problems += run.guard_failures() + run.problems[:3]
    first = run.ready.get("variants", [None])[0] if isinstance(run.ready.get("variants"), list) else None
    # lockstep, adaptive: the controller has no reason to leave the first variant; check the frames it answered with it
    want = fp32_detections(frames)
    hit = total = 0
    for i, (t, msg) in run.answers.items():
        if msg.get("variant") == first:
            got = {"boxes": msg.get("boxes", []), "labels": msg.get("labels", [])}
            h, n = matches(got, want[i])
            hit, total = hit + h, total + n
    answered = len(run.answers)
    if answered < len(frames):
        problems.append(f"{len(frames) - answered} of {len(frames)} frames sent one at a time were never answered")
    if total == 0:
        problems.append(f"no frame was answered with the first variant ({first!r}): the first variant is the original "
                        f"model, which the grader compares with the course detector")
    elif hit / total < LABEL_AGREE:
        problems.append(f"the first variant found {hit} of the course detector's {total} FP32 detections (same box and "
                        f"label); at least {100 * LABEL_AGREE:.0f} %")
    if run.returncode not in (0, None):
        problems.append(f"the runner exited with code {run.returncode} at the end of its input")
    grade.record(len(problems), message="; ".join(problems) or f"{size:.1f} MiB, runs as it is under the edge profile; "
                 f"the first variant matches the course detector on {hit} of {total} detections",
                 details={"problems": problems, "bundle_mb": round(size, 2), "variants": run.ready.get("variants"),
                          "answered": answered, "frames": len(frames), "detections_matched": hit,
                          "detections": total, "files": sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                                                                if p.is_file())[:40]})


@criterion("p4.edge.footprint")
def test_footprint(grade, learner, quick):
    live = live_run(learner, quick)
    folder = bundle(learner)
    size = folder_mb(folder)
    rss = live.run.peak_rss_mb
    if rss is None:
        grade.fail("the device process ended before its memory could be read (it must run until its input ends)")
        return
    if size > SIZE_BUDGET_MB:
        grade.fail(f"the bundle is {size:.1f} MiB on disk (budget {SIZE_BUDGET_MB:.0f} MiB)", value=rss,
                   details={"peak_rss_mb": rss, "bundle_mb": size})
        return
    grade.record(rss, message=f"peak resident memory {rss:.0f} MiB during the live run; bundle {size:.1f} MiB on disk",
                 details={"peak_rss_mb": round(rss, 1), "bundle_mb": round(size, 2), "size_budget_mb": SIZE_BUDGET_MB})
