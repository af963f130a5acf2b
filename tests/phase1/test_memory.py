"""Task 1.4: exact parameter bytes, and a peak that sees a known allocation."""
from __future__ import annotations

import time

import pytest
import torch
from torch import nn

from graders.phase1.workloads import fresh_resident_bytes

from .impl import p1

pytestmark = pytest.mark.phase1_task4

MIB = 1024 * 1024
KNOWN = 64 * MIB   # the allocation the tests look for; p1.peak_memory passes within 10 %


def test_parameter_bytes_counts_parameters_and_buffers_of_every_dtype():
    model = nn.Sequential(nn.Linear(10, 20), nn.BatchNorm1d(20), nn.Linear(20, 3))
    model[2].half()
    expected = (10 * 20 + 20) * 4            # Linear float32
    expected += (20 + 20) * 4                # BatchNorm weight and bias
    expected += (20 + 20) * 4 + 8            # running mean and var, num_batches_tracked (int64)
    expected += (20 * 3 + 3) * 2             # Linear float16
    assert p1.parameter_bytes(model) == expected
    assert isinstance(p1.parameter_bytes(model), int)


def test_shared_weights_count_once():
    shared = nn.Linear(16, 16, bias=False)
    model = nn.Sequential(shared, nn.ReLU(), shared)
    assert p1.parameter_bytes(model) == 16 * 16 * 4


def test_parameter_bytes_of_a_torchvision_model():
    import torchvision

    model = torchvision.models.get_model("mobilenet_v3_small", weights=None)
    tensors = list(model.parameters()) + list(model.buffers())
    assert p1.parameter_bytes(model) == sum(t.numel() * t.element_size() for t in tensors)


def _within(report, known: int, tolerance: float = 0.10) -> bool:
    return abs(report.delta_bytes - known) <= tolerance * known


def test_peak_sees_an_allocation_that_is_returned():
    report = p1.peak_memory_during(lambda: fresh_resident_bytes(KNOWN))
    assert report.device == "cpu"
    assert report.delta_bytes == report.peak_bytes - report.baseline_bytes
    assert _within(report, KNOWN), f"delta {report.delta_bytes / MIB:.1f} MiB, expected 64 MiB"


def test_peak_sees_an_allocation_freed_before_returning():
    def work() -> None:
        block = fresh_resident_bytes(KNOWN)
        time.sleep(0.05)                     # the sampler thread must catch it while it lives
        del block

    report = p1.peak_memory_during(work)
    assert _within(report, KNOWN), f"delta {report.delta_bytes / MIB:.1f} MiB, expected 64 MiB"


def test_no_allocation_no_delta():
    report = p1.peak_memory_during(lambda: None)
    assert report.delta_bytes < 4 * MIB


def test_the_sampler_thread_stops_when_fn_raises():
    import threading

    before = threading.active_count()
    with pytest.raises(ZeroDivisionError):
        p1.peak_memory_during(lambda: 1 / 0)
    assert threading.active_count() == before


@pytest.mark.parametrize("kwargs", [{"device": "tpu"}, {"interval_s": 0.0}, {"device": "cuda", "interval_s": -1.0}])
def test_bad_arguments_are_refused_before_fn_runs(kwargs):
    ran = []
    with pytest.raises(ValueError):
        p1.peak_memory_during(lambda: ran.append(1), **kwargs)
    assert ran == []


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU")
def test_cuda_peak_sees_a_known_allocation():
    report = p1.peak_memory_during(lambda: torch.empty(KNOWN, dtype=torch.uint8, device="cuda"), device="cuda")
    assert report.device == "cuda"
    assert _within(report, KNOWN, 0.05)
