"""Task 2.2: observers track the ranges PyTorch's do, clip where it pays, and plug into torch.ao."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from .impl import q

pytestmark = pytest.mark.phase2_task2

ACT = q.QuantSpec(dtype="uint8", symmetric=False)
WEIGHT = q.QuantSpec(dtype="int8", symmetric=True, per_channel=True, axis=0)


def _batches(n=4, shape=(8, 20), seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=g) * (1 + i) + i * 0.3 for i in range(n)]


def test_minmax_keeps_the_running_range_and_passes_input_through():
    obs = q.MinMaxObserver(ACT)
    xs = _batches()
    for x in xs:
        assert obs(x) is x
    lo, hi = obs.compute_range()
    allx = torch.cat([x.flatten() for x in xs])
    assert float(lo) == float(allx.min()) and float(hi) == float(allx.max())


def test_minmax_qparams_equal_pytorch_observer():
    from torch.ao.quantization.observer import MinMaxObserver, PerChannelMinMaxObserver

    ours, theirs = q.MinMaxObserver(ACT), MinMaxObserver(dtype=torch.quint8, qscheme=torch.per_tensor_affine)
    ours_w = q.MinMaxObserver(WEIGHT)
    theirs_w = PerChannelMinMaxObserver(ch_axis=0, dtype=torch.qint8, qscheme=torch.per_channel_symmetric)
    for x in _batches():
        ours(x), theirs(x), ours_w(x), theirs_w(x)
    for a, b in ((ours, theirs), (ours_w, theirs_w)):
        s, z = a.calculate_qparams()
        ws, wz = b.calculate_qparams()
        torch.testing.assert_close(s.reshape(-1), ws.reshape(-1), rtol=1e-6, atol=0)
        assert torch.equal(z.reshape(-1).to(torch.int64), wz.reshape(-1).to(torch.int64))


def test_moving_average_matches_pytorch():
    from torch.ao.quantization.observer import MovingAverageMinMaxObserver

    ours = q.MovingAverageMinMaxObserver(ACT, averaging_constant=0.2)
    theirs = MovingAverageMinMaxObserver(averaging_constant=0.2, dtype=torch.quint8)
    for x in _batches(6):
        ours(x), theirs(x)
    lo, hi = ours.compute_range()
    assert float(lo) == pytest.approx(float(theirs.min_val), abs=1e-6)
    assert float(hi) == pytest.approx(float(theirs.max_val), abs=1e-6)


@pytest.mark.parametrize("p", [99.0, 99.9])
def test_percentile_reads_the_histogram(p):
    obs = q.PercentileObserver(ACT, percentile=p)
    xs = [torch.randn(20_000) * (1 + 0.5 * i) for i in range(4)]   # the range grows batch by batch
    for x in xs:
        obs(x)
    allx = torch.cat(xs).numpy()
    lo, hi = obs.compute_range()
    want = np.percentile(allx, [100 - p, p])
    span = allx.max() - allx.min()
    assert abs(float(lo) - want[0]) < 0.005 * span and abs(float(hi) - want[1]) < 0.005 * span


def test_histogram_observers_are_per_tensor_only():
    with pytest.raises(ValueError):
        q.PercentileObserver(WEIGHT)


def test_mse_observer_clips_heavy_tails():
    torch.manual_seed(5)
    x = torch.distributions.StudentT(2.5).sample((50_000,))
    spec = q.QuantSpec(dtype="int8", symmetric=True)
    obs = q.HistogramMSEObserver(spec)
    for chunk in x.chunk(4):
        obs(chunk)
    lo, hi = obs.compute_range()
    assert float(hi) < float(x.max())                      # it clipped

    def mse(lo, hi):
        s, z = q.compute_qparams(torch.tensor(lo), torch.tensor(hi), spec)
        return float(((q.fake_quantize(x, s, z, spec) - x) ** 2).mean())

    assert mse(float(lo), float(hi)) < 0.9 * mse(float(x.min()), float(x.max()))


def test_observer_without_data_says_so():
    with pytest.raises(RuntimeError, match="no data"):
        q.MinMaxObserver(ACT).calculate_qparams()


def test_running_histogram_grows_and_keeps_every_count():
    h = q.RunningHistogram(bins=64)
    h.update(torch.rand(1000))
    h.update(torch.rand(500) * 10 - 5)
    assert h.total == 1500 and h.lo <= -4.9 and h.hi >= 4.9
