"""Summary statistics with honest percentiles.

Percentiles need enough samples to mean anything. The minimums are MLPerf LoadGen's
early-stopping figures: 64 samples for p90, 130 for p95, 662 for p99. Below them a percentile is
still computed, but it is labelled an estimate everywhere it is shown.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["MIN_SAMPLES", "Summary", "summarize", "percentile_label", "ratio_disagreement"]

MIN_SAMPLES = {90: 64, 95: 130, 99: 662}


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


def ratio_disagreement(ratios: Summary) -> tuple[float, tuple[float, float]]:
    """How far paired ratios yours/grader's sit from 1, in percent: ``(value, (lo, hi))``.

    ``value`` is ``|median - 1| * 100``; the interval is the same distance over the ratios'
    interquartile range (the convention of ``paired_ratio``), 0 at its low end when the range holds 1.
    One wild round of five moves neither the median nor the quartiles.
    """
    value = abs(ratios.median - 1) * 100
    ends = [abs(x - 1) * 100 for x in (ratios.q1, ratios.q3)]
    lo = 0.0 if ratios.q1 <= 1 <= ratios.q3 else min(ends)
    return value, (min(lo, value), max(max(ends), value))
