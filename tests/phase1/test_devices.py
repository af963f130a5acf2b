"""Task 1.6: a CPU row always, a CUDA row measured or skipped with its reason."""
from __future__ import annotations

import pytest
import torch

from .impl import p1

from .conftest import IMAGE, make_tiny_cnn

pytestmark = pytest.mark.phase1_task6


def _rows(batch_size: int = 2):
    return p1.compare_devices(make_tiny_cnn, lambda b: torch.randn(b, *IMAGE), batch_size=batch_size,
                              warmup=1, iterations=5)


def test_without_a_gpu_the_cuda_row_says_why(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cpu, cuda = _rows()
    assert cpu.device == "cpu" and cpu.available
    assert cpu.p50_ms > 0
    assert cpu.samples_per_s == pytest.approx(2 / (cpu.p50_ms / 1000.0))
    assert cuda.device == "cuda" and not cuda.available
    assert cuda.p50_ms is None and cuda.samples_per_s is None
    assert "cuda" in cuda.reason.lower()


def test_rows_are_cpu_then_cuda():
    rows = _rows(batch_size=1)
    assert [r.device for r in rows] == ["cpu", "cuda"]
    assert rows[1].available == torch.cuda.is_available()


@pytest.mark.parametrize("kwargs", [{"batch_size": 0}, {"warmup": -1}, {"iterations": 0}])
def test_bad_counts_are_refused_before_a_model_is_built(kwargs):
    built = []

    def build():
        built.append(1)
        return make_tiny_cnn()

    with pytest.raises(ValueError):
        p1.compare_devices(build, lambda b: torch.randn(b, *IMAGE), **kwargs)
    assert built == []


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU")
def test_cuda_row_is_measured():
    cpu, cuda = _rows()
    assert cuda.available and cuda.reason == ""
    assert cuda.p50_ms > 0 and cuda.samples_per_s == pytest.approx(2 / (cuda.p50_ms / 1000.0))
