"""From a measured value to a verdict and points: bands, and honesty about noise.

Bands: a seed range such as "INT8 2-4x" becomes ``pass = 2.0``, ``full = 4.0``.
Reaching ``pass`` earns :data:`PASS_FRACTION` of the points, reaching ``full`` earns them all, and
points grow linearly in between. Missing ``pass`` earns nothing.

Noise: a timed measurement comes with an interval, the confidence interval of the statistic it
compares (for example the median of paired ratios, :func:`graders.harness.median_interval`), and a
noise figure for the machine in the same windows (:attr:`graders.harness.Summary.noise`, which a
few lucky samples cannot fool). Criteria extend a measurement (bounded) while its interval
straddles the threshold. When the machine stayed noisy (noise above 0.10) and the interval still
straddles the pass threshold, the verdict is ``inconclusive``, never a silent fail. A noisy
measurement whose whole interval clears (or misses) the threshold is still decided, since the noise
could not have changed the verdict; a fail then reports the noise it saw.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["PASS_FRACTION", "NOISE_LIMIT", "Verdict", "band_points", "judge"]

#: Share of a criterion's points earned at the pass threshold.
PASS_FRACTION = 0.7
#: IQR / median above which a timing is called noisy (torch.utils.benchmark warns at 0.1).
NOISE_LIMIT = 0.10


@dataclass(frozen=True)
class Verdict:
    verdict: str  # pass | fail | inconclusive
    points: float
    note: str = ""


def _meets(value: float, threshold: float, better: str) -> bool:
    return value >= threshold if better == "higher" else value <= threshold


def band_points(value: float, pass_: float, full: float, better: str, points: float) -> float:
    """Points for a value that passed: PASS_FRACTION at ``pass_``, all at ``full``, linear between."""
    if _meets(value, full, better) or pass_ == full:
        return points
    frac = (value - pass_) / (full - pass_)  # same sign convention for both directions
    frac = min(max(frac, 0.0), 1.0)
    return round(points * (PASS_FRACTION + (1 - PASS_FRACTION) * frac), 2)


def judge(value: float | None, pass_: float, full: float, better: str, points: float, *,
          interval: tuple[float, float] | None = None, noisy: bool = False) -> Verdict:
    """Decide one criterion.

    Args:
        value: the grader's measurement in the criterion's unit (None or NaN: nothing valid measured).
        pass_, full: thresholds for the active profile.
        better: "higher" or "lower".
        points: the criterion's points.
        interval: (low, high) plausible range of ``value`` (for example the quartiles of paired ratios).
        noisy: the measurement's spread stayed above NOISE_LIMIT after re-measuring.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return Verdict("fail", 0.0, "no valid measurement")
    ok = _meets(value, pass_, better)
    if noisy and interval is not None:
        lo, hi = sorted(interval)
        if _meets(lo, pass_, better) != _meets(hi, pass_, better):
            return Verdict("inconclusive", 0.0,
                           f"too noisy to decide: interval [{lo:.4g}, {hi:.4g}] straddles {pass_:g}")
    if not ok:
        return Verdict("fail", 0.0)
    return Verdict("pass", band_points(value, pass_, full, better, points))
