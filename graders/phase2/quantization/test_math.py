"""Task 2.1: affine quantization math, exact against PyTorch's own quantize ops on fresh random tensors."""
from __future__ import annotations

import itertools
import math
import random
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from ...checks import as_float, as_tensor, expect
from ...plugin import criterion
from .workloads import sqnr

#: Every scheme: (dtype, symmetric, per_channel, reduce_range).
COMBOS = list(itertools.product(("int8", "uint8"), (True, False), (False, True), (False, True)))
TIE = 1e-4  # |x / scale - (k + 0.5)| below this: either rounding is accepted


def _grid(dtype: str, reduce_range: bool) -> tuple[int, int]:
    """The integer range, from the grader's own table (never from the learner's QuantSpec)."""
    if dtype == "int8":
        return (-64, 63) if reduce_range else (-128, 127)
    return (0, 127) if reduce_range else (0, 255)


def _torch_qparams(x: torch.Tensor, dtype, symmetric, per_channel, reduce_range, axis):
    """PyTorch's observer answer; symmetric uint8 with reduce_range (which PyTorch refuses) by formula."""
    from torch.ao.quantization import observer as O

    qmin, qmax = _grid(dtype, reduce_range)
    if dtype == "uint8" and symmetric and reduce_range:
        if per_channel:
            rows = x.movedim(axis, 0).reshape(x.shape[axis], -1)
            lo, hi = rows.amin(1), rows.amax(1)
        else:
            lo, hi = x.min(), x.max()
        bound = torch.maximum(-torch.clamp(lo, max=0), torch.clamp(hi, min=0))
        scale = torch.clamp(bound / ((qmax - qmin) / 2), min=torch.finfo(torch.float32).eps)
        return scale.reshape(-1), torch.full((scale.numel(),), 64, dtype=torch.int64)
    qdtype = torch.qint8 if dtype == "int8" else torch.quint8
    if per_channel:
        scheme = torch.per_channel_symmetric if symmetric else torch.per_channel_affine
        obs = O.PerChannelMinMaxObserver(ch_axis=axis, dtype=qdtype, qscheme=scheme, reduce_range=reduce_range)
    else:
        scheme = torch.per_tensor_symmetric if symmetric else torch.per_tensor_affine
        obs = O.MinMaxObserver(dtype=qdtype, qscheme=scheme, reduce_range=reduce_range)
    obs(x)
    s, z = obs.calculate_qparams()
    return s.reshape(-1).float(), z.reshape(-1).to(torch.int64)


def _torch_quantize(x, scale, zp, dtype, per_channel, axis, qmin, qmax) -> torch.Tensor:
    """PyTorch's integers (its quantize kernels), clamped to the reduced range; numpy if they are gone."""
    try:
        qdtype = torch.qint8 if dtype == "int8" else torch.quint8
        if per_channel:
            q = torch.quantize_per_channel(x, scale, zp, axis, qdtype)
        else:
            q = torch.quantize_per_tensor(x, float(scale), int(zp), qdtype)
        return q.int_repr().to(torch.int64).clamp(qmin, qmax)
    except (AttributeError, RuntimeError):
        shape = [1] * x.dim()
        if per_channel:
            shape[axis] = -1
        s, z = scale.reshape(shape).numpy(), zp.reshape(shape).numpy()
        q = np.rint(x.numpy() * (np.float32(1.0) / s.astype(np.float32))) + z
        return torch.from_numpy(np.clip(q, qmin, qmax).astype(np.int64))


def _ties(x, scale, per_channel, axis) -> torch.Tensor:
    shape = [1] * x.dim()
    if per_channel:
        shape[axis] = -1
    t = x.double() / scale.double().reshape(shape)
    return (t - torch.floor(t) - 0.5).abs() < TIE


@dataclass(frozen=True)
class _Case:
    """One scheme on one fresh random tensor, with the learner's QuantSpec and PyTorch's qparams for it.

    ``x`` gives the range (qparams); ``x_wide`` is ``x`` followed by ``WIDEN x x`` along the last axis, values
    beyond that range that quantize, dequantize and fake_quantize must clamp to the grid, as they must for
    any value a calibrated range did not cover."""
    label: str
    dtype: str
    per_channel: bool
    axis: int
    x: torch.Tensor
    x_wide: torch.Tensor
    spec: object
    qmin: int
    qmax: int
    want_s: torch.Tensor
    want_z: torch.Tensor

    @property
    def ps(self) -> torch.Tensor:
        """PyTorch's scale, as quantize/dequantize/fake_quantize receive it."""
        return self.want_s if self.per_channel else self.want_s[0]

    @property
    def pz(self) -> torch.Tensor:
        """PyTorch's zero point, as quantize/dequantize/fake_quantize receive it."""
        return self.want_z if self.per_channel else self.want_z[0]

    @property
    def shape_v(self) -> list[int]:
        """The shape that broadcasts per-channel parameters along the channel axis."""
        shape_v = [1] * self.x.dim()
        if self.per_channel:
            shape_v[self.axis] = -1
        return shape_v


def _scheme_label(dtype, symmetric, per_channel, reduce_range) -> str:
    """The scheme's name in messages, e.g. "int8 symmetric per-channel reduce_range"."""
    return f"{dtype} {'symmetric' if symmetric else 'affine'} {'per-channel' if per_channel else 'per-tensor'}" \
           f"{' reduce_range' if reduce_range else ''}"


#: ``_Case.x_wide`` holds ``x`` and ``WIDEN * x``: values past the range the qparams were computed from.
WIDEN = 1.6


def _new_case(learner, rng, dtype, symmetric, per_channel, reduce_range, flip: bool = False) -> _Case:
    """A fresh random tensor (channels of very different sizes) for one scheme, with its spec and PyTorch's qparams.

    Every seed exposes the same mistakes (a sweep of 300 seeds let each of these pass now and then):
    per channel, the axis is 1 for ``reduce_range`` (0 otherwise), or the other way round with ``flip``,
    so both axes are checked for every dtype; per channel, channel 0 is all positive and channel 1 all
    negative, and per tensor with ``reduce_range`` the whole tensor is positive, so a range that is not
    widened to contain 0 gets other qparams; ``x_wide`` needs the clamp (see :class:`_Case`).
    """
    torch.manual_seed(rng.randrange(2**31))
    axis = int(reduce_range != flip) if per_channel else 0
    shape = (rng.randint(3, 9), rng.randint(3, 9), rng.randint(20, 60))
    spread = torch.exp(torch.empty(shape[axis]).uniform_(-3, 1))  # channels of very different sizes
    view = [1, 1, 1]
    view[axis] = -1
    x = (torch.randn(shape) * spread.reshape(view) + rng.uniform(-1, 2)).float()
    if per_channel:   # one channel above zero, one below: the range must still contain 0
        ch0, ch1 = x.select(axis, 0), x.select(axis, 1)
        ch0.copy_(ch0.abs() + 0.05)
        ch1.copy_(-(ch1.abs() + 0.05))
    elif reduce_range:
        x = x - x.min() + 0.05
    x_wide = torch.cat([x, WIDEN * x], dim=2)
    label = _scheme_label(dtype, symmetric, per_channel, reduce_range)
    qmin, qmax = _grid(dtype, reduce_range)
    spec = learner.call("QuantSpec", dtype=dtype, symmetric=symmetric, per_channel=per_channel, axis=axis,
                        reduce_range=reduce_range)
    want_s, want_z = _torch_qparams(x, dtype, symmetric, per_channel, reduce_range, axis)
    return _Case(label, dtype, per_channel, axis, x, x_wide, spec, qmin, qmax, want_s, want_z)


def _check_qparams(learner, c: _Case) -> tuple[int, int, str]:
    """Step 1: scale and zero point from the tensor's own range; (values checked, wrong, first mismatch)."""
    x, label, want_s, want_z = c.x, c.label, c.want_s, c.want_z
    if c.per_channel:
        rows = x.movedim(c.axis, 0).reshape(x.shape[c.axis], -1)
        lo, hi = rows.amin(1), rows.amax(1)
    else:
        lo, hi = x.min(), x.max()
    got = learner.call("compute_qparams", lo.clone(), hi.clone(), c.spec)
    expect(isinstance(got, (tuple, list)) and len(got) == 2, "compute_qparams must return (scale, zero_point)")
    s = as_tensor(got[0], f"scale ({label})").reshape(-1)
    z = as_tensor(got[1], f"zero point ({label})").reshape(-1)
    expect(s.numel() == want_s.numel(), f"{label}: {s.numel()} scales, expected {want_s.numel()}")
    expect(z.numel() == want_z.numel(), f"{label}: {z.numel()} zero points, expected {want_z.numel()}")
    bad = int(((s - want_s).abs() > 1e-6 * want_s.abs()).sum() + (z.to(torch.int64) != want_z).sum())
    first = (f"{label}: compute_qparams gave scale {s[:3].tolist()} zero point {z[:3].tolist()}, "
             f"PyTorch {want_s[:3].tolist()} / {want_z[:3].tolist()}") if bad else ""
    return 2 * want_s.numel(), bad, first


def _check_quantize(learner, c: _Case, ref_q: torch.Tensor) -> tuple[int, int, str]:
    """Step 2: quantize with PyTorch's parameters (so one mistake is not counted twice) against PyTorch's integers,
    on ``x_wide`` (values past the range must clamp)."""
    x, label, dtype = c.x_wide, c.label, c.dtype
    q = learner.call("quantize", x.clone(), c.ps.clone(), c.pz.clone(), c.spec)
    expect(isinstance(q, torch.Tensor) and q.dtype == (torch.int8 if dtype == "int8" else torch.uint8),
           f"{label}: quantize must return a torch.{'int8' if dtype == 'int8' else 'uint8'} tensor, got "
           f"{getattr(q, 'dtype', type(q).__name__)}")
    expect(tuple(q.shape) == tuple(x.shape), f"{label}: quantize returned shape {tuple(q.shape)}")
    diff = (q.to(torch.int64) - ref_q).abs()
    bad_q = (diff > 1) | ((diff == 1) & ~_ties(x, c.want_s, c.per_channel, c.axis))
    first = ""
    if int(bad_q.sum()):
        i = int(bad_q.flatten().nonzero()[0])
        first = (f"{label}: quantize({x.flatten()[i]:.6g}) = {int(q.flatten()[i])}, PyTorch "
                 f"{int(ref_q.flatten()[i])} (round half to even of x * (1/scale), plus the zero point, clamped)")
    return x.numel(), int(bad_q.sum()), first


def _check_dequantize(learner, c: _Case, ref_q: torch.Tensor) -> tuple[int, int, str]:
    """Step 3: dequantize PyTorch's integers against (q - zero_point) * scale."""
    x, label, ps, pz, shape_v = c.x_wide, c.label, c.ps, c.pz, c.shape_v
    want_dq = (ref_q - pz.reshape(shape_v if c.per_channel else ())).float() * ps.reshape(
        shape_v if c.per_channel else ())
    store = ref_q.to(torch.int8 if c.dtype == "int8" else torch.uint8)
    dq = as_tensor(learner.call("dequantize", store, ps.clone(), pz.clone(), c.spec), f"dequantize ({label})",
                   shape=x.shape)
    bad_dq = (dq - want_dq).abs() > 1e-6 * want_dq.abs().clamp(min=float(ps.min()))
    first = f"{label}: dequantize differs from (q - zero_point) * scale by up to {float((dq - want_dq).abs().max()):.3g}" \
        if int(bad_dq.sum()) else ""
    return x.numel(), int(bad_dq.sum()), first


def _check_fake_quantize(learner, c: _Case) -> tuple[int, int, str]:
    """Step 4: fake_quantize against torch.fake_quantize_* (ties may round either way)."""
    x, label, ps, want_s, want_z = c.x_wide, c.label, c.ps, c.want_s, c.want_z
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if c.per_channel:
            want_fq = torch.fake_quantize_per_channel_affine(x, want_s, want_z.to(torch.int32), c.axis, c.qmin, c.qmax)
        else:
            want_fq = torch.fake_quantize_per_tensor_affine(x, float(want_s[0]), int(want_z[0]), c.qmin, c.qmax)
    fq = as_tensor(learner.call("fake_quantize", x.clone(), ps.clone(), c.pz.clone(), c.spec),
                   f"fake_quantize ({label})", shape=x.shape)
    err = (fq - want_fq).abs()
    step = ps.reshape(c.shape_v) if c.per_channel else ps
    bad_fq = (err > 1e-5 * step) & ~((err <= step * 1.0001) & _ties(x, want_s, c.per_channel, c.axis))
    first = f"{label}: fake_quantize differs from torch.fake_quantize_* by up to {float(err.max()):.3g}" \
        if int(bad_fq.sum()) else ""
    return x.numel(), int(bad_fq.sum()), first


def _check_scheme(learner, c: _Case) -> list[tuple[int, int, str]]:
    """All four steps on one scheme, in order: (values checked, wrong, first mismatch) for each."""
    results = [_check_qparams(learner, c)]
    ref_q = _torch_quantize(c.x_wide, c.ps, c.pz, c.dtype, c.per_channel, c.axis, c.qmin, c.qmax)
    results.append(_check_quantize(learner, c, ref_q))
    results.append(_check_dequantize(learner, c, ref_q))
    results.append(_check_fake_quantize(learner, c))
    return results


@criterion("p2.quantization.math_exact")
def test_math_exact(grade, learner):
    rng = random.SystemRandom()
    flip = rng.random() < 0.5   # which axis goes with reduce_range: both axes are checked either way
    checked = wrong = 0
    first = ""
    for dtype, symmetric, per_channel, reduce_range in COMBOS:
        case = _new_case(learner, rng, dtype, symmetric, per_channel, reduce_range, flip)
        for n, bad, mismatch in _check_scheme(learner, case):
            checked += n
            wrong += bad
            first = first or mismatch
    share = 100.0 * wrong / checked
    grade.record(share, message=first or f"all {checked:,} values agree with PyTorch over {len(COMBOS)} schemes",
                 details={"values_checked": checked, "values_wrong": wrong, "schemes": len(COMBOS)})


@criterion("p2.quantization.sqnr")
def test_sqnr(grade, learner):
    """Per-channel int8 weights through your qparams and fake_quantize; SQNR measured by the grader."""
    torch.manual_seed(random.SystemRandom().randrange(2**31))
    mag = torch.exp(torch.empty(64).uniform_(math.log(1e-3), 0.0))  # channel scales over 3 decades
    w = torch.randn(64, 32, 3, 3) * mag[:, None, None, None]
    spec = learner.call("QuantSpec", dtype="int8", symmetric=True, per_channel=True, axis=0, reduce_range=False)
    rows = w.reshape(64, -1)
    got = learner.call("compute_qparams", rows.amin(1), rows.amax(1), spec)
    expect(isinstance(got, (tuple, list)) and len(got) == 2, "compute_qparams must return (scale, zero_point)")
    wq = as_tensor(learner.call("fake_quantize", w.clone(), got[0], got[1], spec), "fake_quantize(weight)",
                   shape=w.shape)
    value = sqnr(w, wq)
    # The learner's helpers must agree with the grader's on the same pair.
    theirs = as_float(learner.call("sqnr_db", w.clone(), wq.clone()), "sqnr_db(...)")
    expect(abs(theirs - value) <= 0.01, f"sqnr_db gave {theirs:.4f} dB, the grader {value:.4f} dB "
                                        f"(10 * log10(sum(ref^2) / sum((ref - approx)^2)))")
    rel = float(torch.linalg.vector_norm((w - wq).double()) / torch.linalg.vector_norm(w.double()))
    theirs_rel = as_float(learner.call("relative_error", w.clone(), wq.clone()), "relative_error(...)")
    expect(abs(theirs_rel - rel) <= 1e-6 * max(rel, 1e-12), f"relative_error gave {theirs_rel:.6g}, the grader {rel:.6g}")
    exact = learner.call("sqnr_db", w.clone(), w.clone())
    expect(exact == math.inf, f"sqnr_db(x, x) should be inf (no noise at all), got {exact!r}")
    # The per-tensor figure, for the report: the reason weights are quantized per channel.
    pt = learner.call("QuantSpec", dtype="int8", symmetric=True, per_channel=False, axis=0, reduce_range=False)
    s_pt = learner.call("compute_qparams", w.min(), w.max(), pt)
    w_pt = as_tensor(learner.call("fake_quantize", w.clone(), s_pt[0], s_pt[1], pt), "fake_quantize(per tensor)")
    grade.record(value, message=f"per-channel int8 weights: SQNR {value:.1f} dB (per-tensor: {sqnr(w, w_pt):.1f} dB)",
                 details={"per_channel_sqnr_db": value, "per_tensor_sqnr_db": sqnr(w, w_pt),
                          "relative_error": rel})
