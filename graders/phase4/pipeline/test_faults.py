"""Task 4.5: bad streams among good ones, a stage that hangs, and a long run at a sustainable load.

Faults: two good live clips beside a corrupt file, a missing file and a decoder that fails after 20 frames; then
a classifier that hangs mid-run. Soak: 150 s (40 s in ``--quick``) at about a third of this machine's ceiling, the
process's resident memory sampled every second (its Theil-Sen slope after a warm-up is graded) and the latency of
the last third compared with the first.
"""
from __future__ import annotations

import math
import os
import threading
import time
from pathlib import Path

import numpy as np
import psutil
from scipy.stats import theilslopes
import torch
from torch import nn

from ...plugin import criterion
from .workload import (probe, FPS, Recorder, accounting_problems, classifier, clip, detections_match, expected,
                       frame_cost_ms, grader_source, run_pipeline)

STALL_TIMEOUT_S = 2.0
#: Length of the soak, s (``--quick``: the shortest whose window after warm-up resolves the pass mark).
SOAK_S, SOAK_QUICK_S = 150, 40


class Hangs(nn.Module):
    """The classifier, hanging on its ``after``-th call until the grader lets it go."""

    def __init__(self, inner: nn.Module, after: int):
        super().__init__()
        self.inner, self.after, self.calls = inner, after, 0
        self.release = threading.Event()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls == self.after:
            self.release.wait(60)
        return self.inner(x)


def _bad_file(tmp_path: Path) -> Path:
    """A file named like a video whose bytes are not one (a camera's upload cut short)."""
    good = clip(0)[0].read_bytes()
    path = tmp_path / "corrupt.avi"
    path.write_bytes(good[:64] + os.urandom(4096))
    return path


@criterion("p4.pipeline.faults")
def test_faults(grade, learner, tmp_path):
    probe(learner)
    rec = Recorder()
    missing = tmp_path / "no-such-camera.avi"
    corrupt = _bad_file(tmp_path)
    sources = [grader_source(learner, "cam00", clip(0)[0], rec, limit=60),
               grader_source(learner, "cam01", clip(1)[0], rec, limit=60),
               grader_source(learner, "corrupt", corrupt, rec),
               grader_source(learner, "missing", missing, rec),
               grader_source(learner, "failing", clip(2)[0], rec, fail_after=20)]
    run = run_pipeline(learner, sources, rec, timeout_s=60)
    problems = accounting_problems(run)
    streams = run.report.streams
    for k, name in enumerate(("cam00", "cam01")):
        rep, log = streams.get(name), rec.streams[name]
        if rep is None or getattr(rep, "error", None) or not getattr(rep, "completed", False):
            problems.append(f"good stream {name}: error={getattr(rep, 'error', None)!r}, "
                            f"completed={getattr(rep, 'completed', None)!r} (expected no error, completed)")
        if len(log.answered) < 0.95 * len(log.released):
            problems.append(f"good stream {name}: only {len(log.answered)} of {len(log.released)} frames answered")
        want = expected(k)
        wrong = sum(1 for i, r in log.results.items() if not detections_match(r[:3], want[i]))
        if wrong:
            problems.append(f"good stream {name}: {wrong} frames' detections differ from a clean run's")
    for name, what in (("corrupt", corrupt.name), ("missing", missing.name), ("failing", "frame 20")):
        err = getattr(streams.get(name), "error", None)
        if not isinstance(err, str) or not err.strip():
            problems.append(f"bad stream {name}: no error reported (expected one naming {what})")
        elif name != "failing" and what not in err:
            problems.append(f"bad stream {name}: its error {err[:120]!r} does not name the file {what}")
    if len(rec.streams["failing"].released) != 20:
        problems.append(f"the failing stream released {len(rec.streams['failing'].released)} frames (20 expected)")
    # a stage that hangs
    rec2 = Recorder(keep_results=False)
    hang = Hangs(classifier(), after=15)
    t0 = time.perf_counter()
    try:
        run2 = run_pipeline(learner, [grader_source(learner, f"cam{i:02d}", clip(i)[0], rec2) for i in range(2)], rec2,
                            classifier_model=hang, config={"stall_timeout_s": STALL_TIMEOUT_S}, timeout_s=30)
    finally:
        hang.release.set()
    took = time.perf_counter() - t0
    stalled = getattr(run2.report, "stalled", None)
    hung_at = None
    if stalled != "inference":
        problems.append(f"with a classifier that hangs, the report's stalled is {stalled!r}, expected 'inference'")
    released = sum(len(log.released) for log in rec2.streams.values())
    if hang.calls >= 15:
        hung_at = 90 / FPS  # at most the clips' length
        if took > hung_at + STALL_TIMEOUT_S + 4.0:
            problems.append(f"run() returned {took:.1f} s after it started with a stage hung (stall_timeout_s "
                            f"{STALL_TIMEOUT_S:g}): the watchdog is too slow or missing")
    problems += [f"stalled run: {p}" for p in accounting_problems(run2)]
    grade.record(len(problems), message="; ".join(problems) or "bad streams reported with their errors, good ones "
                 f"complete and correct; a hung classifier stopped the run in {took:.1f} s with every frame counted",
                 details={"problems": problems, "errors": {n: getattr(streams.get(n), "error", None)
                                                           for n in ("corrupt", "missing", "failing")},
                          "stalled_run_s": round(took, 2), "stalled_frames_released": released})


class SoakRecorder(Recorder):
    """A recorder whose own memory stays flat: release times are forgotten once answered."""

    def __init__(self, capacity: int):
        super().__init__(keep_results=False)
        self.lat = np.full(capacity, np.nan)
        self.n = 0
        self.released_count: dict[str, int] = {}
        self.answered_count: dict[str, int] = {}

    def on_result(self, r) -> None:
        now = time.perf_counter()
        with self.lock:
            log = self.streams.get(r.stream)
            t = None if log is None else log.released.pop(int(r.index), None)
            if t is None:
                self.unknown.append(f"{r.stream}/{r.index}")
                return
            self.answered_count[r.stream] = self.answered_count.get(r.stream, 0) + 1
            if self.n < len(self.lat):
                self.lat[self.n] = 1000.0 * (now - t)
                self.n += 1


@criterion("p4.pipeline.soak")
def test_soak(grade, learner, quick):
    probe(learner)
    # The slope's resolution is the allocator's one-off growth (up to about 2 MiB on an honest run, from a first
    # arena or a bounded window filling) over the window after warm-up: 30 s keep that under 4 MiB/min, half the pass
    # mark; a 10 s soak once measured an honest reference at 15 MiB/min.
    seconds = SOAK_QUICK_S if quick else SOAK_S
    ceiling = len(os.sched_getaffinity(0)) * 1000.0 / (FPS * frame_cost_ms())
    n = max(1, math.floor(ceiling / 3))
    loops = max(1, round(seconds * FPS / 90))
    rec = SoakRecorder(capacity=n * loops * 90 + 16)
    counted: dict[str, int] = {}
    sources = [grader_source(learner, f"cam{i:02d}", clip(i % 4)[0], rec, loops=loops) for i in range(n)]
    for s in sources:  # count releases without keeping them: wrap the release log
        log = rec.log(s.name)
        log.released = _CountingDict(counted, s.name)
    proc = psutil.Process()
    samples: list[tuple[float, float]] = []
    done = threading.Event()

    def sample():
        while not done.wait(1.0):
            samples.append((time.perf_counter(), proc.memory_info().rss / 2**20))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        run = run_pipeline(learner, sources, rec, timeout_s=seconds + 60)
    finally:
        done.set()
        sampler.join(2)
    problems = [f"{len(rec.unknown)} results for frames never released"] if rec.unknown else []
    for s in sources:
        rep = run.report.streams.get(s.name)
        released, answered = counted.get(s.name, 0), rec.answered_count.get(s.name, 0)
        dropped = int(sum(getattr(rep, "dropped", {}).values())) if rep is not None else -1
        if rep is None or released != answered + dropped:
            problems.append(f"{s.name}: {released} released, {answered} answered, {dropped} counted as dropped")
    lat = rec.lat[:rec.n]
    warm = len(samples) // 4
    t = np.array([a for a, _ in samples[warm:]])
    mb = np.array([b for _, b in samples[warm:]])
    # Theil-Sen (the median of every pairwise slope): one allocator hiccup does not tilt it as least squares would
    slope = float(theilslopes(mb, (t - t[0]) / 60.0)[0]) if len(t) >= 5 else math.nan
    third = len(lat) // 3
    first, last = (float(np.median(lat[third // 2:third])), float(np.median(lat[-third:]))) if third >= 10 \
        else (math.nan, math.nan)
    drift_ok = not (last > 2 * first + 20.0)
    details = {"problems": problems, "streams": n, "seconds": seconds, "rss_slope_mb_per_min": round(slope, 3),
               "rss_mb_first": round(float(mb[0]), 1) if len(mb) else None,
               "rss_mb_last": round(float(mb[-1]), 1) if len(mb) else None,
               "p50_latency_first_ms": round(first, 1), "p50_latency_last_ms": round(last, 1),
               "samples": {"RSS (MiB)": [round(float(v), 2) for v in mb]}}
    if problems or not math.isfinite(slope):
        grade.fail("; ".join(problems) or "too few memory samples to fit a slope", value=slope if math.isfinite(slope)
                   else None, details=details)
        return
    if not drift_ok:
        grade.fail(f"latency drifted: median {first:.0f} ms early in the run, {last:.0f} ms at the end (a queue or a "
                   f"history that grows)", value=slope, details=details)
        return
    grade.record(slope, message=f"{n} streams for {seconds} s: resident memory grew {slope:+.2f} MiB per minute after "
                 f"warm-up; median latency {first:.0f} ms early, {last:.0f} ms at the end", details=details)


class _CountingDict(dict):
    """A release log that counts every frame put into it (the soak keeps only frames not yet answered)."""

    def __init__(self, counts: dict[str, int], name: str):
        super().__init__()
        self.counts, self.name = counts, name

    def __setitem__(self, key, value) -> None:
        self.counts[self.name] = self.counts.get(self.name, 0) + 1
        super().__setitem__(key, value)
