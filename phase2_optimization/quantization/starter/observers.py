"""Task 2.2: calibration observers: watch real activations, choose the range to quantize.

Each observer is a ``torch.ao.quantization`` observer (``ObserverBase``), so PyTorch's FX flow
(Task 2.4) can insert it after every layer, feed it calibration batches and ask it for
``calculate_qparams()``. You write how each one turns what it saw into a range.
Guide: QUANTIZATION_GUIDE.md#task-22-calibration-observers
"""
from __future__ import annotations

import torch
from torch.ao.quantization.observer import ObserverBase

from .affine import compute_qparams, fake_quantize
from ..types import QuantSpec

__all__ = ["RunningHistogram", "RangeObserver", "MinMaxObserver", "MovingAverageMinMaxObserver",
           "PercentileObserver", "HistogramMSEObserver", "per_channel_view"]

#: The default activation scheme: affine uint8 per tensor, as PyTorch's x86 backend expects.
ACTIVATION = QuantSpec(dtype="uint8", symmetric=False)


# ---------------------------------------------------------------------------------------------------
# Helpers (written in full): channel views, a growing histogram, the torch.ao observer plumbing
# ---------------------------------------------------------------------------------------------------
def per_channel_view(x: torch.Tensor, axis: int) -> torch.Tensor:
    """``x`` as [C, N]: one row per slice along ``axis`` (C = x.shape[axis])."""
    return x.movedim(axis, 0).reshape(x.shape[axis], -1)


class RunningHistogram:
    """Counts of every value seen, in ``bins`` equal bins over [lo, hi]; the range grows as needed.

    When a batch falls outside the current range, the range is widened to cover it and the old
    counts move to the new bin that holds each old bin's centre (a little resolution is lost).

    Attributes:
        bins: number of bins; counts: float64 [bins] (None before the first update);
        lo, hi: the range covered (floats).
    """

    def __init__(self, bins: int = 2048) -> None:
        self.bins = int(bins)
        self.counts: torch.Tensor | None = None
        self.lo = self.hi = 0.0

    def update(self, x: torch.Tensor) -> None:
        """Add every value of ``x`` to the counts, widening the range first if ``x`` falls outside it."""
        x = x.detach().float().flatten()
        if x.numel() == 0:
            return
        lo, hi = float(x.min()), float(x.max())
        if self.counts is None:
            self.lo, self.hi = lo, hi if hi > lo else lo + 1e-6
            self.counts = torch.zeros(self.bins, dtype=torch.float64)
        elif lo < self.lo or hi > self.hi:
            self._grow(min(lo, self.lo), max(hi, self.hi))
        self.counts += torch.histc(x, self.bins, self.lo, self.hi).double()

    def _grow(self, lo: float, hi: float) -> None:
        centres = self.centres()
        idx = ((centres - lo) / (hi - lo) * self.bins).floor().long().clamp(0, self.bins - 1)
        counts = torch.zeros(self.bins, dtype=torch.float64).index_add_(0, idx, self.counts)
        self.lo, self.hi, self.counts = lo, hi, counts

    def edges(self) -> torch.Tensor:
        """float64 [bins + 1]: bin i covers [edges[i], edges[i + 1])."""
        return torch.linspace(self.lo, self.hi, self.bins + 1, dtype=torch.float64)

    def centres(self) -> torch.Tensor:
        """float64 [bins]: the middle of each bin."""
        e = self.edges()
        return (e[:-1] + e[1:]) / 2

    @property
    def total(self) -> float:
        return 0.0 if self.counts is None else float(self.counts.sum())


class RangeObserver(ObserverBase):
    """Base of this phase's observers: torch.ao plumbing around ``observe`` and ``compute_range``.

    ``forward(x)`` hands a detached float32 copy of every non-empty batch to ``observe`` and returns
    ``x`` unchanged (an observer only watches). ``calculate_qparams()`` turns ``compute_range()``
    into (scale, zero_point) with your ``compute_qparams`` (Task 2.1). ``dtype``, ``qscheme``,
    ``quant_min``, ``quant_max`` and ``ch_axis`` are what PyTorch's FX convert step reads.

    Attributes:
        spec: the integer grid; min_val, max_val: the running range (empty tensors before any data).
    """

    def __init__(self, spec: QuantSpec | None = None) -> None:
        spec = spec if spec is not None else ACTIVATION
        super().__init__(dtype=spec.torch_dtype, is_dynamic=False)
        self.spec = spec
        self.qscheme = spec.torch_qscheme
        self.quant_min, self.quant_max, self.ch_axis = spec.quant_min, spec.quant_max, spec.axis
        self.register_buffer("min_val", torch.tensor([]))
        self.register_buffer("max_val", torch.tensor([]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Hand a detached float32 copy of a non-empty ``x`` to ``observe``; return ``x`` unchanged."""
        if x.numel() > 0:
            self.observe(x.detach().float())
        return x

    def has_data(self) -> bool:
        """True once ``observe`` has recorded a range (``min_val`` is no longer empty)."""
        return self.min_val.numel() > 0

    def observe(self, x: torch.Tensor) -> None:
        """Fold one batch into the running range: every observer overrides this."""
        raise NotImplementedError

    def compute_range(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The (min, max) to quantize: the running range unless an observer overrides it."""
        return self.min_val, self.max_val

    @torch.jit.export
    def calculate_qparams(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``compute_qparams(*compute_range(), spec)``: (scale float32, zero_point int64), 0-d or [C].

        Raises:
            RuntimeError: nothing has been observed yet (run calibration batches first).
        """
        if not self.has_data():
            raise RuntimeError(f"{type(self).__name__} has seen no data: run calibration batches first")
        lo, hi = self.compute_range()
        return compute_qparams(lo, hi, self.spec)

    def extra_repr(self) -> str:
        """The spec and the running range, for ``print(observer)``."""
        return f"spec={self.spec}, min_val={self.min_val.tolist()}, max_val={self.max_val.tolist()}"


class _HistogramObserver(RangeObserver):
    """Shared by the histogram-based observers: per tensor only, a ``RunningHistogram`` of all data."""

    def __init__(self, spec: QuantSpec | None = None, bins: int = 2048) -> None:
        super().__init__(spec)
        if self.spec.per_channel:
            raise ValueError(f"{type(self).__name__} is per tensor (activations); use MinMaxObserver "
                             f"for per-channel weights")
        self.histogram = RunningHistogram(bins)

    def observe(self, x: torch.Tensor) -> None:
        self.histogram.update(x)
        self.min_val = torch.tensor(self.histogram.lo)
        self.max_val = torch.tensor(self.histogram.hi)


# ---------------------------------------------------------------------------------------------------
# ## Task 2.2: calibration observers
# ---------------------------------------------------------------------------------------------------
class MinMaxObserver(RangeObserver):
    """The running minimum and maximum of everything observed (per tensor or per channel).

    Args:
        spec: the integer grid; ``spec.per_channel`` keeps one min/max per slice along ``spec.axis``
            (weights: ``QuantSpec("int8", symmetric=True, per_channel=True, axis=0)``).
    """

    def observe(self, x: torch.Tensor) -> None:
        """Fold one batch into ``min_val`` / ``max_val``.

        Args:
            x: float32 tensor, any shape (per channel: ``x.shape[spec.axis]`` channels).

        Returns:
            None; afterwards ``min_val`` / ``max_val`` are float32 tensors, 0-d per tensor or [C] per
            channel, holding the minimum / maximum over every batch seen so far.

        Tolerance the grader applies (p2.quantization.observer_ranges): exact, and ``calculate_qparams()``
        equal to PyTorch's ``MinMaxObserver`` / ``PerChannelMinMaxObserver`` on the same batches.

        Guide: QUANTIZATION_GUIDE.md#task-22-calibration-observers
        """
        # Step 1: this batch's min and max: x.min()/x.max(), or per_channel_view(x, axis).amin(1)/.amax(1).
        # Step 2: the first batch sets the range; later ones widen it (torch.minimum / torch.maximum).
        raise NotImplementedError("Task 2.2: see QUANTIZATION_GUIDE.md#task-22-calibration-observers")


class MovingAverageMinMaxObserver(RangeObserver):
    """An exponential moving average of each batch's min and max: one outlier batch moves it less.

    Args:
        spec: the integer grid (per tensor or per channel, like ``MinMaxObserver``).
        averaging_constant: c in ``min <- min + c * (batch_min - min)`` (0 < c <= 1; 1 keeps only
            the last batch).

    Raises:
        ValueError: ``averaging_constant`` outside (0, 1].
    """

    def __init__(self, spec: QuantSpec | None = None, averaging_constant: float = 0.01) -> None:
        super().__init__(spec)
        if not 0 < averaging_constant <= 1:
            raise ValueError(f"averaging_constant must be in (0, 1], not {averaging_constant}")
        self.averaging_constant = float(averaging_constant)

    def observe(self, x: torch.Tensor) -> None:
        """Fold one batch into the moving averages ``min_val`` / ``max_val``.

        Args:
            x: float32 tensor, any shape.

        Returns:
            None; the first batch sets ``min_val`` / ``max_val`` to its own min / max, each later
            batch moves them by ``averaging_constant`` times the difference (PyTorch's
            ``MovingAverageMinMaxObserver`` rule).

        Tolerance the grader applies (p2.quantization.observer_ranges): within 1e-5 of PyTorch's
        ``MovingAverageMinMaxObserver`` (relative to the data's range) after several batches.

        Guide: QUANTIZATION_GUIDE.md#task-22-calibration-observers
        """
        # Step 1: this batch's min and max, per tensor or per channel (as in MinMaxObserver).
        # Step 2: first batch: take them; later: min_val + c * (lo - min_val), same for max.
        raise NotImplementedError("Task 2.2: see QUANTIZATION_GUIDE.md#task-22-calibration-observers")


class PercentileObserver(_HistogramObserver):
    """Clip the rare extremes: the range between the (100 - p)th and the p-th percentile of all data.

    Args:
        spec: a per-tensor grid (activations).
        percentile: p, in (50, 100]; 99.99 ignores the most extreme 0.01 % on each side.
        bins: resolution of the histogram the percentiles are read from.

    Raises:
        ValueError: a per-channel ``spec``, or ``percentile`` outside (50, 100].
    """

    def __init__(self, spec: QuantSpec | None = None, percentile: float = 99.99, bins: int = 2048) -> None:
        super().__init__(spec, bins)
        if not 50 < percentile <= 100:
            raise ValueError(f"percentile must be in (50, 100], not {percentile}")
        self.percentile = float(percentile)

    def compute_range(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The (100 - p)th and p-th percentiles of every value observed, read from ``self.histogram``.

        Returns:
            (low, high): 0-d float32 tensors, low <= high. Interpolate linearly inside the bin where
            the cumulative count crosses the wanted fraction.

        Tolerance the grader applies (p2.quantization.observer_ranges): within 1 % of the data's range
        (max - min) of ``numpy.percentile`` over all observed values.

        Guide: QUANTIZATION_GUIDE.md#task-22-calibration-observers
        """
        # Step 1: the cumulative fraction at each bin's right edge: counts.cumsum(0) / total.
        # Step 2: first bin whose cumulative fraction reaches q (torch.searchsorted), then
        #   interpolate between its left and right edges by how far into the bin q falls.
        # Step 3: low at (100 - p) / 100, high at p / 100, as float32 0-d tensors.
        raise NotImplementedError("Task 2.2: see QUANTIZATION_GUIDE.md#task-22-calibration-observers")


class HistogramMSEObserver(_HistogramObserver):
    """The range whose quantization error (clipping + rounding) over the observed data is smallest.

    Args:
        spec: a per-tensor grid (activations).
        bins: histogram resolution.
        candidates: how many shrunken ranges to try (``alpha * (lo, hi)`` for alpha in
            1/candidates .. 1; int >= 1).

    Raises:
        ValueError: a per-channel ``spec``, or ``candidates < 1``.
    """

    def __init__(self, spec: QuantSpec | None = None, bins: int = 2048, candidates: int = 200) -> None:
        super().__init__(spec, bins)
        if int(candidates) < 1:
            raise ValueError(f"candidates must be >= 1, not {candidates}")
        self.candidates = int(candidates)

    def compute_range(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Search shrunken ranges for the one with the least expected squared error.

        For each alpha in ``1/candidates, 2/candidates, ..., 1``: the candidate range is
        ``(alpha * lo, alpha * hi)`` of the histogram's range; its error is
        ``sum(counts * (fake_quantize(centres) - centres) ** 2)`` over the bins (values beyond the
        range are clipped by the clamp inside ``fake_quantize``). Return the best candidate.

        Returns:
            (low, high): 0-d float32 tensors.

        Tolerance the grader applies (p2.quantization.observer_mse): on heavy-tailed data, the true squared
        error of quantizing the data with your range is at most 1.10x (full marks 1.05x) the best the
        grader finds by a fine search, and well below min-max's.

        Guide: QUANTIZATION_GUIDE.md#task-22-calibration-observers
        """
        # Step 1: every candidate at once: alphas [K], ranges alphas * lo and alphas * hi.
        # Step 2: treat the K candidates as K "channels": compute_qparams on the [K] ranges and
        #   fake_quantize a [K, bins] copy of the centres with a per-channel spec on axis 0.
        # Step 3: the candidate with the smallest error.
        raise NotImplementedError("Task 2.2: see QUANTIZATION_GUIDE.md#task-22-calibration-observers")
