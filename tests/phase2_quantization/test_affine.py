"""Task 2.1: scale, zero point and the round trip agree with PyTorch's own quantization."""
from __future__ import annotations

import itertools
import math
import warnings

import pytest
import torch

from .impl import q

pytestmark = pytest.mark.phase2_task1

SCHEMES = list(itertools.product(("int8", "uint8"), (True, False), (False, True)))


def _torch_qparams(x, dtype, symmetric, per_channel, axis=0):
    from torch.ao.quantization import observer as O

    qdtype = torch.qint8 if dtype == "int8" else torch.quint8
    if per_channel:
        scheme = torch.per_channel_symmetric if symmetric else torch.per_channel_affine
        obs = O.PerChannelMinMaxObserver(ch_axis=axis, dtype=qdtype, qscheme=scheme)
    else:
        scheme = torch.per_tensor_symmetric if symmetric else torch.per_tensor_affine
        obs = O.MinMaxObserver(dtype=qdtype, qscheme=scheme)
    obs(x)
    return obs.calculate_qparams()


@pytest.mark.parametrize("dtype, symmetric, per_channel", SCHEMES)
def test_qparams_and_quantize_match_pytorch(dtype, symmetric, per_channel):
    torch.manual_seed(0)
    x = torch.randn(6, 40) * torch.linspace(0.1, 3, 6)[:, None] + 0.7
    spec = q.QuantSpec(dtype=dtype, symmetric=symmetric, per_channel=per_channel, axis=0)
    lo, hi = (x.amin(1), x.amax(1)) if per_channel else (x.min(), x.max())
    scale, zp = q.compute_qparams(lo, hi, spec)
    want_s, want_z = _torch_qparams(x, dtype, symmetric, per_channel)
    assert scale.dtype == torch.float32 and zp.dtype == torch.int64
    torch.testing.assert_close(scale.reshape(-1), want_s.reshape(-1), rtol=1e-6, atol=0)
    assert torch.equal(zp.reshape(-1), want_z.reshape(-1).to(torch.int64))
    qdtype = torch.qint8 if dtype == "int8" else torch.quint8
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = (torch.quantize_per_channel(x, want_s, want_z, 0, qdtype) if per_channel
               else torch.quantize_per_tensor(x, float(want_s), int(want_z), qdtype))
    got = q.quantize(x, scale, zp, spec)
    assert got.dtype == spec.storage_dtype
    assert torch.equal(got.to(torch.int64), ref.int_repr().to(torch.int64))
    torch.testing.assert_close(q.dequantize(got, scale, zp, spec), ref.dequantize(), rtol=1e-6, atol=1e-7)


def test_reduce_range_uses_seven_bits():
    x = torch.randn(1000) * 2
    for dtype, grid in (("int8", (-64, 63)), ("uint8", (0, 127))):
        spec = q.QuantSpec(dtype=dtype, symmetric=False, reduce_range=True)
        scale, zp = q.compute_qparams(x.min(), x.max(), spec)
        ints = q.quantize(x, scale, zp, spec).to(torch.int64)
        assert ints.min() >= grid[0] and ints.max() <= grid[1]
        assert ints.max() - ints.min() >= 120          # the range is used, not wasted


def test_zero_is_exact_and_values_are_clamped():
    spec = q.QuantSpec(dtype="uint8", symmetric=False)
    scale, zp = q.compute_qparams(torch.tensor(0.5), torch.tensor(4.0), spec)   # range widened to [0, 4]
    assert int(zp) == 0
    assert q.fake_quantize(torch.zeros(3), scale, zp, spec).abs().max() == 0
    out = q.quantize(torch.tensor([-10.0, 100.0]), scale, zp, spec)
    assert out.tolist() == [0, 255]


def test_all_zero_tensor_gets_a_usable_scale():
    spec = q.QuantSpec(dtype="int8", symmetric=True)
    scale, zp = q.compute_qparams(torch.tensor(0.0), torch.tensor(0.0), spec)
    assert float(scale) == torch.finfo(torch.float32).eps and int(zp) == 0


def test_symmetric_uint8_zero_point_is_the_middle():
    s, z = q.compute_qparams(torch.tensor(-1.0), torch.tensor(1.0), q.QuantSpec("uint8", symmetric=True))
    assert int(z) == 128
    s, z = q.compute_qparams(torch.tensor(-1.0), torch.tensor(1.0), q.QuantSpec("uint8", True, reduce_range=True))
    assert int(z) == 64


def test_per_channel_on_another_axis_matches_fake_quantize():
    torch.manual_seed(3)
    x = torch.randn(4, 5, 7) * torch.tensor([0.01, 0.1, 1, 10, 100])[None, :, None]
    spec = q.QuantSpec(dtype="int8", symmetric=True, per_channel=True, axis=1)
    rows = x.movedim(1, 0).reshape(5, -1)
    scale, zp = q.compute_qparams(rows.amin(1), rows.amax(1), spec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = torch.fake_quantize_per_channel_affine(x, scale, zp.to(torch.int32), 1, -128, 127)
    torch.testing.assert_close(q.fake_quantize(x, scale, zp, spec), ref, rtol=0, atol=1e-6)
    assert q.sqnr_db(x, q.fake_quantize(x, scale, zp, spec)) > 38


def test_sqnr_and_relative_error():
    x = torch.tensor([3.0, 4.0])
    assert q.sqnr_db(x, x) == math.inf
    assert q.sqnr_db(x, torch.tensor([3.0, 3.0])) == pytest.approx(10 * math.log10(25 / 1))
    assert q.relative_error(x, torch.tensor([3.0, 3.0])) == pytest.approx(1 / 5)
    assert q.relative_error(x, x) == 0.0


def test_sqnr_of_gaussian_int8_is_about_40_db():
    torch.manual_seed(4)
    x = torch.randn(100_000)
    spec = q.QuantSpec(dtype="int8", symmetric=True)
    scale, zp = q.compute_qparams(x.min(), x.max(), spec)
    assert 36 < q.sqnr_db(x, q.fake_quantize(x, scale, zp, spec)) < 44


@pytest.mark.parametrize("bad", [dict(dtype="int4"), dict(axis=-1), dict(symmetric=1)])
def test_quantspec_validates(bad):
    with pytest.raises(ValueError):
        q.QuantSpec(**bad)
