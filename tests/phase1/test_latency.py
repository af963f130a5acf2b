"""Task 1.2: exact statistics, honest timing (warm-up, sync inside the timed region)."""
from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from .impl import p1

pytestmark = pytest.mark.phase1_task2


def _rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-300)


@pytest.mark.parametrize("n", [1, 2, 7, 100, 1000])
def test_summary_matches_numpy(n):
    rng = np.random.default_rng(n)
    samples = rng.lognormal(mean=1.0, sigma=0.5, size=n).tolist()
    s = p1.summarize_latencies(samples)
    arr = np.asarray(samples)
    expected = {"mean_ms": arr.mean(), "std_ms": arr.std(), "min_ms": arr.min(), "max_ms": arr.max(),
                "p50_ms": np.percentile(arr, 50), "p90_ms": np.percentile(arr, 90),
                "p95_ms": np.percentile(arr, 95), "p99_ms": np.percentile(arr, 99),
                "cv": arr.std() / arr.mean()}
    for name, value in expected.items():
        assert _rel(getattr(s, name), float(value)) <= 1e-9, name
    assert s.n_samples == n
    assert s.samples_ms == samples
    assert all(type(v) is float for v in (s.mean_ms, s.p99_ms, s.cv))   # plain floats, JSON-ready


def test_std_is_population_std():
    s = p1.summarize_latencies([1.0, 3.0])
    assert s.std_ms == pytest.approx(1.0)          # ddof=0; the sample std would be 1.414
    assert s.cv == pytest.approx(0.5)
    assert s.p50_ms == pytest.approx(2.0)          # linear interpolation


def test_empty_samples_are_a_value_error():
    with pytest.raises(ValueError):
        p1.summarize_latencies([])


def test_cv_is_nan_when_the_mean_is_zero():
    s = p1.summarize_latencies([0.0, 0.0])
    assert s.mean_ms == 0.0 and s.cv != s.cv       # nan, not a ZeroDivisionError


@pytest.mark.parametrize("q, need", [(90, 64), (95, 130), (99, 662)])
def test_percentile_estimate_follows_loadgen_minimums(q, need):
    assert p1.summarize_latencies([1.0] * (need - 1)).percentile_is_estimate(q)
    assert not p1.summarize_latencies([1.0] * need).percentile_is_estimate(q)


def test_measure_latency_reads_a_known_duration():
    s = p1.measure_latency(lambda: time.sleep(0.005), warmup=1, iterations=15)
    assert s.n_samples == 15
    assert s.min_ms >= 5.0                         # sleep never returns early
    assert s.p50_ms < 5.0 * 3                      # generous: shared CI machines are noisy


def test_measure_latency_warms_up_then_times_exactly_iterations():
    calls = []
    s = p1.measure_latency(lambda: calls.append(1), warmup=4, iterations=9)
    assert len(calls) == 13 and s.n_samples == 9


class FakeAsyncDevice:
    """Work is queued by launch() and only runs when sync() is called, like CUDA kernels."""

    def __init__(self, work_s: float) -> None:
        self.work_s, self.pending, self.syncs = work_s, 0, 0

    def launch(self) -> None:
        self.pending += 1                           # returns at once

    def sync(self) -> None:
        self.syncs += 1
        time.sleep(self.work_s * self.pending)
        self.pending = 0


def test_sync_is_inside_the_timed_region():
    device = FakeAsyncDevice(work_s=0.004)
    s = p1.measure_latency(device.launch, warmup=2, iterations=10, sync=device.sync)
    assert s.min_ms >= 4.0                          # each sample includes its own work
    assert s.p50_ms < 4.0 * 3
    assert device.syncs >= 10                       # one per timed call (and one after warm-up)
    assert device.pending == 0


def test_warmup_work_is_drained_before_timing():
    device = FakeAsyncDevice(work_s=0.003)
    s = p1.measure_latency(device.launch, warmup=5, iterations=5, sync=device.sync)
    # Without a sync after warm-up the first sample would carry 6 calls' work (18 ms).
    assert s.samples_ms[0] < 3.0 * 4


def test_bad_counts_are_value_errors():
    with pytest.raises(ValueError):
        p1.measure_latency(lambda: None, iterations=0)
    with pytest.raises(ValueError):
        p1.measure_latency(lambda: None, warmup=-1)


def test_device_sync_on_cpu_is_a_no_op():
    sync = p1.device_sync("cpu")
    assert callable(sync) and sync() is None


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU")
def test_cuda_sync_makes_the_timing_honest():
    a = torch.randn(4096, 4096, device="cuda")

    def work() -> None:
        for _ in range(5):
            a @ a

    honest = p1.measure_latency(work, warmup=2, iterations=10, sync=p1.device_sync("cuda"))
    queued = p1.measure_latency(work, warmup=2, iterations=10, sync=None)
    torch.cuda.synchronize()
    assert honest.p50_ms > 2 * queued.p50_ms        # without sync we time the launches only
