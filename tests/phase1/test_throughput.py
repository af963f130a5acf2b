"""Task 1.3: one consistent point per batch size."""
from __future__ import annotations

import time

import pytest
import torch

from .impl import p1

from .conftest import IMAGE

pytestmark = pytest.mark.phase1_task3


class SleepyModel:
    """A predictor whose batch call takes a known time: 2 ms + 0.5 ms per sample."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        time.sleep(0.002 + 0.0005 * batch.shape[0])
        return batch


def test_points_are_consistent_and_in_order():
    model, built = SleepyModel(), []

    def make_batch(b: int) -> torch.Tensor:
        built.append(b)
        return torch.zeros(b, *IMAGE)

    sizes = [8, 1, 4]
    points = p1.measure_throughput(model, make_batch, sizes, warmup=1, iterations=5)
    assert [p.batch_size for p in points] == sizes          # the order given
    assert built == sizes                                   # one batch per size, built outside the loop
    assert model.calls == len(sizes) * (1 + 5)
    for p in points:
        assert p.samples_per_s == pytest.approx(p.batch_size / (p.latency_ms / 1000.0), rel=1e-12)
        assert p.latency_ms >= 2.0 + 0.5 * p.batch_size     # sleep never returns early
    by_size = {p.batch_size: p for p in points}
    assert by_size[8].samples_per_s > by_size[1].samples_per_s   # overhead amortised over the batch


def test_a_real_model(tiny_cnn):
    predictor = p1.Predictor(tiny_cnn, kind="torchvision", name="tiny")
    points = p1.measure_throughput(predictor, lambda b: torch.randn(b, *IMAGE), [1, 4], warmup=1, iterations=3)
    assert len(points) == 2 and all(p.samples_per_s > 0 and p.latency_ms > 0 for p in points)


def test_batch_size_below_one_is_a_value_error():
    with pytest.raises(ValueError):
        p1.measure_throughput(SleepyModel(), lambda b: torch.zeros(b, 1), [0])


def test_every_argument_is_checked_before_anything_is_built():
    built = []

    def make_batch(b):
        built.append(b)
        return torch.zeros(b, 1)

    for sizes, kwargs in (([1, 0], {}), ([1], {"warmup": -1}), ([1], {"iterations": 0})):
        with pytest.raises(ValueError):
            p1.measure_throughput(SleepyModel(), make_batch, sizes, **kwargs)
    assert built == []
    assert p1.measure_throughput(SleepyModel(), make_batch, []) == []
