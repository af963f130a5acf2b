"""Result types shared by every Phase 1 task (helpers, written in full: nothing to fill in here).

Each measuring function returns one of these small dataclasses instead of a bare number, so the raw
figures (every latency sample, the baseline beside the peak) travel with the summary. The graders read
them by attribute name: keep the names and units as they are.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "MIN_SAMPLES",
    "LatencyStats",
    "ThroughputPoint",
    "MemoryReport",
    "OpStat",
    "DeviceResult",
    "ReportPaths",
]

#: Fewest samples for a percentile to count as measured rather than estimated: MLPerf LoadGen's
#: early-stopping minimums (quantile -> samples). With fewer, p99 is mostly "the largest sample seen".
MIN_SAMPLES: dict[int, int] = {90: 64, 95: 130, 99: 662}


# ---------------------------------------------------------------------------------------------------
# Task 1.2: latency
# ---------------------------------------------------------------------------------------------------
@dataclass
class LatencyStats:
    """Summary of repeated latency measurements, all times in milliseconds.

    ``std_ms`` is the population standard deviation (ddof=0); ``cv = std_ms / mean_ms`` (coefficient
    of variation, unitless; nan when the mean is 0); the percentiles use numpy's default ("linear")
    interpolation.
    ``samples_ms`` keeps every raw sample, in the order measured.
    """

    mean_ms: float
    std_ms: float
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    min_ms: float
    max_ms: float
    cv: float
    n_samples: int
    samples_ms: list[float] = field(repr=False)

    def percentile_is_estimate(self, q: int) -> bool:
        """True when ``n_samples`` is below LoadGen's minimum for percentile ``q`` (90, 95 or 99).

        Raises:
            ValueError: ``q`` is not 90, 95 or 99.
        """
        if q not in MIN_SAMPLES:
            raise ValueError(f"no sample minimum for p{q}; known: {sorted(MIN_SAMPLES)}")
        return self.n_samples < MIN_SAMPLES[q]


# ---------------------------------------------------------------------------------------------------
# Task 1.3: throughput
# ---------------------------------------------------------------------------------------------------
@dataclass
class ThroughputPoint:
    """One batch size: ``latency_ms`` is the median time of one batch call (ms), and
    ``samples_per_s = batch_size / (latency_ms / 1000)``."""

    batch_size: int
    samples_per_s: float
    latency_ms: float


# ---------------------------------------------------------------------------------------------------
# Task 1.4: memory
# ---------------------------------------------------------------------------------------------------
@dataclass
class MemoryReport:
    """Memory around one call, in bytes. ``delta_bytes = peak_bytes - baseline_bytes``.

    ``device`` says what was measured: "cpu" (process resident set size) or "cuda" (bytes held by
    tensors in PyTorch's CUDA caching allocator).
    """

    baseline_bytes: int
    peak_bytes: int
    delta_bytes: int
    device: str


# ---------------------------------------------------------------------------------------------------
# Task 1.5: operators
# ---------------------------------------------------------------------------------------------------
@dataclass
class OpStat:
    """One operator in a profile: ``name`` such as "aten::addmm"; ``self_time_ms`` is its self time
    summed over all profiled calls (ms, children excluded); ``calls`` how many times it ran."""

    name: str
    self_time_ms: float
    calls: int


# ---------------------------------------------------------------------------------------------------
# Task 1.6: devices
# ---------------------------------------------------------------------------------------------------
@dataclass
class DeviceResult:
    """One device row: ``device`` is "cpu" or "cuda"; ``available`` False means not measured, with
    ``p50_ms`` and ``samples_per_s`` None and ``reason`` saying why."""

    device: str
    available: bool
    p50_ms: float | None
    samples_per_s: float | None
    reason: str = ""


# ---------------------------------------------------------------------------------------------------
# Task 1.7: report
# ---------------------------------------------------------------------------------------------------
@dataclass
class ReportPaths:
    """Where ``write_report`` put its files. ``plots`` has the keys "latency_histogram" and "throughput"."""

    markdown: Path
    json: Path
    plots: dict[str, Path]
