"""Summary statistics with honest percentiles.

Percentiles need enough samples to mean anything. The minimums are MLPerf LoadGen's
early-stopping figures: 64 samples for p90, 130 for p95, 662 for p99. Below them a percentile is
still computed, but it is labelled an estimate everywhere it is shown.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["MIN_SAMPLES", "CONFIDENCE", "Summary", "summarize", "percentile_label", "median_interval",
           "ratio_disagreement", "straddles", "quotient_interval"]

MIN_SAMPLES = {90: 64, 95: 130, 99: 662}
#: Coverage of the intervals that decide verdicts (:func:`median_interval`).
CONFIDENCE = 0.90
#: Below this many samples, :attr:`Summary.noise` also trusts the plain CV (quartiles of few samples can be lucky).
FEW_SAMPLES = 12
#: Normal-distribution constant: IQR = 1.349 sigma, so ``1.349 * cv`` is on the scale of ``spread``.
_IQR_PER_SIGMA = 1.349


@dataclass(frozen=True)
class Summary:
    """Statistics of one list of samples, in the samples' unit."""

    n: int
    mean: float
    std: float  # population (ddof=0)
    median: float
    q1: float
    q3: float
    p90: float
    p95: float
    p99: float
    min: float
    max: float
    samples: list[float] = field(repr=False, default_factory=list)

    @property
    def iqr(self) -> float:
        return self.q3 - self.q1

    @property
    def spread(self) -> float:
        """IQR / median: the grader's noise measure (0.10 and above is noisy)."""
        return self.iqr / self.median if self.median else float("inf")

    @property
    def noise(self) -> float:
        """The machine-noise estimate the grader trusts, on the scale of :attr:`spread` (IQR / median).

        With few samples (under :data:`FEW_SAMPLES`) the IQR is fooled by lucky draws: five runs of a
        machine that alternates between two speeds can land four in one mode, giving a small IQR and
        robust CV while the plain CV is large. So for few samples this is the largest of the IQR
        spread, the plain CV and the robust CV (each scaled to an IQR equivalent); the machine is
        called quiet only when all three agree. With more samples the quartiles are trustworthy and one
        wild sample should not make a whole measurement "noisy": the larger of IQR and robust CV.
        """
        if not self.median or not self.mean:
            return float("inf")
        robust = max(self.spread, _IQR_PER_SIGMA * self.robust_cv)
        return max(robust, _IQR_PER_SIGMA * self.cv) if self.n < FEW_SAMPLES else robust

    @property
    def cv(self) -> float:
        return self.std / self.mean if self.mean else float("inf")

    @property
    def robust_cv(self) -> float:
        """1.4826 * MAD / median: equals the CV for normal samples, but one wild sample cannot move it."""
        if not self.median:
            return float("inf")
        a = np.asarray(self.samples, dtype=np.float64)
        return float(1.4826 * np.median(np.abs(a - self.median)) / self.median)

    def is_estimate(self, q: int) -> bool:
        return self.n < MIN_SAMPLES.get(q, 0)


def summarize(samples) -> Summary:
    a = np.asarray(list(samples), dtype=np.float64)
    if a.size == 0:
        raise ValueError("no samples to summarize")
    q = np.percentile(a, [25, 50, 75, 90, 95, 99])
    return Summary(n=int(a.size), mean=float(a.mean()), std=float(a.std()), median=float(q[1]),
                   q1=float(q[0]), q3=float(q[2]), p90=float(q[3]), p95=float(q[4]), p99=float(q[5]),
                   min=float(a.min()), max=float(a.max()), samples=a.tolist())


def percentile_label(q: int, n: int) -> str:
    """``"p99"`` or ``"p99 (estimate, 120 < 662 samples)"``."""
    need = MIN_SAMPLES.get(q, 0)
    return f"p{q}" if n >= need else f"p{q} (estimate, {n} < {need} samples)"


def median_interval(samples, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """A distribution-free confidence interval for the median: ``(low, high)`` order statistics.

    The number of samples below the true median is Binomial(n, 1/2), so the k-th smallest and k-th
    largest samples bracket the median with probability ``1 - 2 P(K < k)``; ``k`` is the largest
    that keeps at least ``confidence``. No normality assumed: a bimodal machine (two speeds) or a
    burst of outliers is fine. With few samples the interval is wide (n = 5 at 90 %: min to max),
    which is why deciding criteria extend a measurement while it straddles the threshold.
    """
    a = np.sort(np.asarray(list(samples), dtype=np.float64))
    n = a.size
    if n == 0:
        raise ValueError("no samples")
    # (a[j], a[n-1-j]) holds the median unless K <= j or K >= n-j, K ~ Binomial(n, 1/2) the count
    # below it: coverage 1 - 2 P(K <= j). Take the largest j that keeps the coverage (min..max at worst).
    cdf, pmf, k = 0.0, 0.5 ** n, 0
    for j in range((n - 1) // 2):
        cdf += pmf  # P(K <= j)
        if 1 - 2 * cdf < confidence:
            break
        k = j
        pmf = pmf * (n - j) / (j + 1)
    return float(a[k]), float(a[n - 1 - k])


def ratio_disagreement(ratios: Summary) -> tuple[float, tuple[float, float]]:
    """How far paired ratios yours/grader's sit from 1, in percent: ``(value, (lo, hi))``.

    ``value`` is ``|median - 1| * 100``; the interval maps :func:`median_interval` of the ratios
    (the uncertainty of the median, which is what is compared) to the same distance, 0 at its low
    end when the interval holds 1.
    """
    value = abs(ratios.median - 1) * 100
    q_lo, q_hi = median_interval(ratios.samples)
    ends = [abs(x - 1) * 100 for x in (q_lo, q_hi)]
    lo = 0.0 if q_lo <= 1 <= q_hi else min(ends)
    return value, (min(lo, value), max(max(ends), value))


def quotient_interval(num: float, num_interval: tuple[float, float], den: float,
                      den_interval: tuple[float, float]) -> tuple[float, float]:
    """Interval of ``num / den`` for two estimates measured independently, each with its own interval.

    Each side's relative uncertainty (``ln(point / end)``, below and above) is combined in quadrature,
    as for any quotient of independent errors: the low end pairs a low numerator with a high denominator
    at ``sqrt(a**2 + b**2)`` of their log distances, not ``a + b`` (both at their extremes at once, which
    for two 90 % intervals is far rarer than 1 in 10). The result always lies within the extremes'
    interval ``(num_lo / den_hi, num_hi / den_lo)``. Where a value or an end is not positive (no log),
    the extremes are returned. The points are clamped into their intervals.
    """
    n_lo, n_hi = sorted(num_interval)
    d_lo, d_hi = sorted(den_interval)
    n, d = min(max(num, n_lo), n_hi), min(max(den, d_lo), d_hi)
    if min(n_lo, d_lo) <= 0:
        return n_lo / d_hi if d_hi > 0 else float("-inf"), n_hi / d_lo if d_lo > 0 else float("inf")
    q = n / d
    below = float(np.hypot(np.log(n / n_lo), np.log(d_hi / d)))
    above = float(np.hypot(np.log(n_hi / n), np.log(d / d_lo)))
    return q * float(np.exp(-below)), q * float(np.exp(above))


def straddles(interval: tuple[float, float], threshold: float | tuple[float, float]) -> bool:
    """True when the measurement cannot yet decide: ``threshold`` lies strictly inside ``interval``.

    ``threshold`` may be a band ``(low, high)``: a pass mark that is itself measured (a share of a
    ceiling measured in the same run), so known only within that band. Then True when ``interval``
    overlaps the band's inside, that is when some plausible value and some plausible mark disagree.
    """
    lo, hi = sorted(interval)
    t_lo, t_hi = sorted(threshold) if isinstance(threshold, tuple) else (threshold, threshold)
    return lo < t_hi and t_lo < hi
