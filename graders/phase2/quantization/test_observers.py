"""Task 2.2: calibration observers give the ranges they promise (against PyTorch and numpy)."""
from __future__ import annotations

import random
import warnings

import numpy as np
import torch

from ...checks import as_tensor, expect
from ...plugin import criterion


def _range(learner, obs, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    got = learner.call_obj(obs.compute_range, what=f"{what}.compute_range()")
    expect(isinstance(got, (tuple, list)) and len(got) == 2, f"{what}.compute_range() must return (min, max)")
    return as_tensor(got[0], f"{what} min").reshape(-1), as_tensor(got[1], f"{what} max").reshape(-1)


def _feed(learner, obs, batches, what):
    for b in batches:
        out = learner.call_obj(obs, b.clone(), what=what)
        expect(isinstance(out, torch.Tensor) and torch.equal(out, b), f"{what}(x) must return x unchanged")


def _batches(rng: random.Random, shape, n=4, per_channel_axis=None):
    out = []
    for i in range(n):
        x = torch.randn(shape) * rng.uniform(0.5, 3.0) + rng.uniform(-1, 1)
        if per_channel_axis is not None:
            view = [1] * len(shape)
            view[per_channel_axis] = -1
            x = x * torch.exp(torch.empty(shape[per_channel_axis]).uniform_(-2, 1)).reshape(view)
        out.append(x)
    return out


@criterion("p2.quantization.observer_ranges")
def test_observer_ranges(grade, learner):
    from torch.ao.quantization import observer as O

    rng = random.Random(random.SystemRandom().randrange(2**31))
    torch.manual_seed(rng.randrange(2**31))
    errors: dict[str, float] = {}

    def err(name, got_lo, got_hi, want_lo, want_hi, span):
        e = float(torch.maximum((got_lo - want_lo).abs(), (got_hi - want_hi).abs()).max() / span) * 100
        errors[name] = max(errors.get(name, 0.0), e)

    act = learner.call("QuantSpec", dtype="uint8", symmetric=False)
    wspec = learner.call("QuantSpec", dtype="int8", symmetric=True, per_channel=True, axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # min-max, per tensor: the range exactly, and PyTorch's qparams
        xs = _batches(rng, (16, 8, 10))
        obs = learner.call("MinMaxObserver", act)
        _feed(learner, obs, xs, "MinMaxObserver")
        ref = O.MinMaxObserver(dtype=torch.quint8, qscheme=torch.per_tensor_affine)
        for x in xs:
            ref(x)
        lo, hi = _range(learner, obs, "MinMaxObserver")
        span = float(ref.max_val - ref.min_val)
        err("minmax per-tensor", lo, hi, ref.min_val.reshape(-1), ref.max_val.reshape(-1), span)
        got = learner.call_obj(obs.calculate_qparams, what="MinMaxObserver.calculate_qparams")
        expect(isinstance(got, (tuple, list)) and len(got) == 2, "calculate_qparams must return (scale, zero_point)")
        ws, wz = ref.calculate_qparams()
        s = float(as_tensor(got[0], "scale").reshape(-1)[0])
        z = int(as_tensor(got[1], "zero point").reshape(-1)[0])
        errors["minmax qparams (scale)"] = 100 * abs(s / float(ws[0]) - 1)
        errors["minmax qparams (zero point)"] = 0.0 if z == int(wz[0]) else 100.0
        # min-max, per channel on axis 1
        xs = _batches(rng, (4, 12, 3, 3), per_channel_axis=1)
        obs = learner.call("MinMaxObserver", wspec)
        _feed(learner, obs, xs, "MinMaxObserver (per channel)")
        ref = O.PerChannelMinMaxObserver(ch_axis=1, dtype=torch.qint8, qscheme=torch.per_channel_symmetric)
        for x in xs:
            ref(x)
        lo, hi = _range(learner, obs, "MinMaxObserver (per channel)")
        expect(lo.numel() == 12, f"a per-channel observer on axis 1 of a [4, 12, 3, 3] tensor keeps 12 ranges, "
                                 f"not {lo.numel()}")
        span = (ref.max_val - ref.min_val).clamp(min=1e-12)
        err("minmax per-channel", lo / span, hi / span, ref.min_val / span, ref.max_val / span, 1.0)
        # moving average, per tensor and per channel, against PyTorch
        c = rng.choice((0.05, 0.1, 0.3))
        xs = _batches(rng, (16, 8, 10), n=6)
        obs = learner.call("MovingAverageMinMaxObserver", act, averaging_constant=c)
        _feed(learner, obs, xs, "MovingAverageMinMaxObserver")
        ref = O.MovingAverageMinMaxObserver(averaging_constant=c, dtype=torch.quint8)
        for x in xs:
            ref(x)
        lo, hi = _range(learner, obs, "MovingAverageMinMaxObserver")
        err("moving average per-tensor", lo, hi, ref.min_val.reshape(-1), ref.max_val.reshape(-1),
            float(ref.max_val - ref.min_val))
        xs = _batches(rng, (4, 12, 3, 3), n=5, per_channel_axis=1)
        obs = learner.call("MovingAverageMinMaxObserver", wspec, averaging_constant=c)
        _feed(learner, obs, xs, "MovingAverageMinMaxObserver (per channel)")
        ref = O.MovingAveragePerChannelMinMaxObserver(averaging_constant=c, ch_axis=1, dtype=torch.qint8,
                                                       qscheme=torch.per_channel_symmetric)
        for x in xs:
            ref(x)
        lo, hi = _range(learner, obs, "MovingAverageMinMaxObserver (per channel)")
        span = (ref.max_val - ref.min_val).clamp(min=1e-12)
        err("moving average per-channel", lo / span, hi / span, ref.min_val / span, ref.max_val / span, 1.0)
    # percentile: batches of growing spread, so the histogram has to widen
    p = rng.choice((99.0, 99.9, 99.99))
    xs = [torch.randn(20000) * (1 + 0.5 * i) + 0.2 * i for i in range(5)]
    obs = learner.call("PercentileObserver", act, percentile=p)
    _feed(learner, obs, xs, "PercentileObserver")
    allx = torch.cat(xs).double().numpy()
    want_lo, want_hi = np.percentile(allx, [100 - p, p])
    lo, hi = _range(learner, obs, "PercentileObserver")
    err(f"percentile {p}", lo, hi, torch.tensor([want_lo]).float(), torch.tensor([want_hi]).float(),
        float(allx.max() - allx.min()))
    worst = max(errors, key=errors.get)
    grade.record(errors[worst], message=f"largest error: {worst} ({errors[worst]:.3g}% of the data's range)",
                 details={f"error_pct[{k}]": v for k, v in errors.items()})


def _heavy_tailed(kind: str, n: int = 100_000) -> torch.Tensor:
    t = torch.distributions.StudentT(torch.tensor(2.5)).sample((n,))
    return t if kind == "signed" else t + 1.5


def _mse(x: torch.Tensor, lo: float, hi: float, symmetric: bool) -> float:
    """Squared error of quantizing x with the range [lo, hi] (grader's own qparams and PyTorch's fake quant)."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    if symmetric:
        qmin, qmax = -128, 127
        scale, zp = max(-lo, hi) / 127.5, 0
    else:
        qmin, qmax = 0, 255
        scale = (hi - lo) / 255
        zp = int(np.clip(qmin - round(lo / max(scale, 1e-12)), qmin, qmax))
    scale = max(scale, float(torch.finfo(torch.float32).eps))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fq = torch.fake_quantize_per_tensor_affine(x, scale, zp, qmin, qmax)
    return float(((fq - x).double() ** 2).mean())


def _best(x: torch.Tensor, symmetric: bool, n: int = 400) -> float:
    lo, hi = float(x.min()), float(x.max())
    return min(_mse(x, a * lo, a * hi, symmetric) for a in np.linspace(1 / n, 1, n))


@criterion("p2.quantization.observer_mse")
def test_observer_mse(grade, learner):
    torch.manual_seed(random.SystemRandom().randrange(2**31))
    ratios, details = {}, {}
    for kind, dtype, symmetric in (("signed", "int8", True), ("skewed", "uint8", False)):
        spec = learner.call("QuantSpec", dtype=dtype, symmetric=symmetric)
        for _ in range(5):  # data on which clipping clearly pays (min-max at least 15 % worse than best)
            x = _heavy_tailed(kind)
            obs = learner.call("HistogramMSEObserver", spec)  # your code first: a stub fails fast
            _feed(learner, obs, list(x.chunk(4)), "HistogramMSEObserver")
            lo, hi = _range(learner, obs, "HistogramMSEObserver")
            best = _best(x, symmetric)
            minmax = _mse(x, float(x.min()), float(x.max()), symmetric)
            if minmax / best >= 1.15:
                break
        yours = _mse(x, float(lo[0]), float(hi[0]), symmetric)
        ratios[kind] = yours / best
        details.update({f"{kind}_yours_mse": yours, f"{kind}_best_mse": best, f"{kind}_minmax_mse": minmax,
                        f"{kind}_range": [float(lo[0]), float(hi[0])], f"{kind}_data_range": [float(x.min()),
                                                                                           float(x.max())]})
    worst = max(ratios, key=ratios.get)
    d = details
    grade.record(ratios[worst], details=d,
                 message=f"{worst} data: your range gives {ratios[worst]:.3f}x the best squared error "
                         f"(min-max gives {d[worst + '_minmax_mse'] / d[worst + '_best_mse']:.2f}x)")
