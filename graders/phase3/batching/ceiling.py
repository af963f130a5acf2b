"""What a model itself gains from batching on this machine: the ceiling a batcher is graded against.

A batcher can only pass on what the model gives: on a 2-core AVX2 CPU the digits ResNet-18 gains
about 3.1x from batch 1 to batch 16, on a VNNI one about 3.7x, on a GPU ResNet-50 far more. So
``p3.batching.speedup`` is graded as a share of this ceiling, measured in the same run with the
same thread count: the grader calls the model directly (no batcher, no threads, no futures) on the
same samples one at a time and ``max_batch_size`` at a time, interleaved, and takes the median of
the paired ratios ``time(batch 1) / time(batch max)``.

The same holds for serving several models at once (``p3.batching.pool_throughput``): how much four
models gain from running in four threads instead of one after another is the machine's (its cores,
its memory bandwidth, the GIL between operators), so :func:`measure_concurrency_ceiling` measures
it with the grader's own threads calling the models directly, and the pool is graded as a share of it.

The batching share is of the *gain*: ``efficiency = (speedup - 1) / (ceiling - 1)``, so a batcher that never
batches scores 0 %, one that reaches the model's own gain 100 % (a little more is possible, as the
grader's unbatched server pays a thread hand-off per request that direct calls do not).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import threading

import torch

from ...harness import PairedResult, paired_ratio, quotient_interval

__all__ = ["Ceiling", "measure_ceiling", "efficiency", "efficiency_interval", "speedup_for", "speedup_band",
           "ConcurrencyCeiling", "measure_concurrency_ceiling", "share_interval", "share_band"]


@dataclass(frozen=True)
class Ceiling:
    """The model's own batching gain: median ratio, its 90 % interval, samples/s at both sizes."""

    ratio: float
    interval: tuple[float, float]
    b1_samples_s: float
    bmax_samples_s: float
    max_batch_size: int
    samples_per_pair: int
    pairs: int

    def details(self) -> dict:
        return {"model_ceiling_x": self.ratio, "model_ceiling_interval": list(self.interval),
                "model_b1_samples_s": self.b1_samples_s, "model_bmax_samples_s": self.bmax_samples_s,
                "model_ceiling_pairs": self.pairs}


def measure_ceiling(model: Callable[[torch.Tensor], torch.Tensor], make_samples: Callable[[], torch.Tensor], *,
                    max_batch_size: int, pairs: int, sync: Callable[[], None] | None = None) -> Ceiling:
    """Time ``model`` on the same samples at batch 1 and at ``max_batch_size``, interleaved.

    Args:
        model: ``[B, ...] -> [B, ...]``, called under ``torch.inference_mode``.
        make_samples: fresh ``[N, ...]`` samples for each pair, ``N`` a multiple of ``max_batch_size``.
        pairs: timed pairs (after one untimed warm-up pair).
        sync: device synchronisation inside each timed region (CUDA).
    """
    def one_by_one(xs: torch.Tensor) -> None:
        with torch.inference_mode():
            for i in range(xs.shape[0]):
                model(xs[i:i + 1])

    def batched(xs: torch.Tensor) -> None:
        with torch.inference_mode():
            for i in range(0, xs.shape[0], max_batch_size):
                model(xs[i:i + max_batch_size])

    n = make_samples().shape[0]
    if n % max_batch_size:
        raise ValueError(f"{n} samples per pair is not a multiple of max_batch_size {max_batch_size}")
    res: PairedResult = paired_ratio(one_by_one, batched, make_inputs=lambda: (make_samples(),), pairs=pairs,
                                     warmup=1, max_attempts=1, sync=sync)
    return Ceiling(ratio=res.median, interval=res.interval, b1_samples_s=1000.0 * n / res.a_ms.median,
                   bmax_samples_s=1000.0 * n / res.b_ms.median, max_batch_size=max_batch_size,
                   samples_per_pair=n, pairs=res.ratios.n)


def efficiency(speedup: float, ceiling: float) -> float:
    """``100 * (speedup - 1) / (ceiling - 1)``, in %: the share of the model's batching gain reached."""
    gain = ceiling - 1.0
    if not gain > 0:
        raise ValueError(f"the model gains nothing from batching here (ceiling {ceiling:.3g}x): nothing to grade")
    return 100.0 * (speedup - 1.0) / gain


def _ceiling_bounds(ceiling: Ceiling) -> tuple[float, float]:
    """The ceiling's plausible range, as the verdict uses it (its point estimate inside, above 1)."""
    c_lo, c_hi = sorted(ceiling.interval)
    return max(c_lo, 1.0 + 1e-9), max(c_hi, ceiling.ratio)


def efficiency_interval(speedup: float, speedup_interval: tuple[float, float],
                        ceiling: Ceiling) -> tuple[float, float]:
    """Both uncertainties at once (%): the gain ``speedup - 1`` over the ceiling's ``ratio - 1``, each with
    its interval, combined as independent estimates (:func:`~graders.harness.quotient_interval`)."""
    s_lo, s_hi = sorted(speedup_interval)
    c_lo, c_hi = _ceiling_bounds(ceiling)
    lo, hi = quotient_interval(speedup - 1.0, (s_lo - 1.0, s_hi - 1.0), ceiling.ratio - 1.0, (c_lo - 1.0, c_hi - 1.0))
    return 100.0 * lo, 100.0 * hi


def speedup_for(efficiency_pct: float, ceiling: float) -> float:
    """The raw speedup that reaches ``efficiency_pct`` of ``ceiling`` (the inverse of :func:`efficiency`)."""
    return 1.0 + efficiency_pct / 100.0 * (ceiling - 1.0)


def speedup_band(efficiency_pct: float, ceiling: Ceiling) -> tuple[float, float]:
    """The raw speedups that reach ``efficiency_pct`` at both ends of the ceiling's range: a speedup
    interval straddles this band when the lowest speedup over the highest ceiling and the highest over
    the lowest disagree, which includes every case where :func:`efficiency_interval` straddles
    ``efficiency_pct`` (so ``paired_ratio`` measures again whenever the verdict could not decide)."""
    c_lo, c_hi = _ceiling_bounds(ceiling)
    return speedup_for(efficiency_pct, c_lo), speedup_for(efficiency_pct, c_hi)


@dataclass(frozen=True)
class ConcurrencyCeiling:
    """What the models gain from computing in one thread each over one after another, called directly."""

    ratio: float
    interval: tuple[float, float]
    pairs: int

    def details(self) -> dict:
        return {"machine_concurrency_x": self.ratio, "machine_concurrency_interval": list(self.interval),
                "machine_concurrency_pairs": self.pairs}


def measure_concurrency_ceiling(models: dict[str, Callable[[torch.Tensor], torch.Tensor]],
                                make_samples: Callable[[], dict[str, torch.Tensor]], *, batch_size: int,
                                pairs: int) -> ConcurrencyCeiling:
    """Median of paired ratios ``time(one model after another) / time(all at once, a thread each)``.

    Each model runs its samples in batches of ``batch_size`` under ``torch.inference_mode``; the
    threads are the grader's, with no queue, no futures and no clients: the most that serving
    these models together can gain on this machine, at the current thread settings.
    """
    def run(name: str, xs: torch.Tensor) -> None:
        with torch.inference_mode():
            for i in range(0, xs.shape[0], batch_size):
                models[name](xs[i:i + batch_size])

    def sequential(samples: dict[str, torch.Tensor]) -> None:
        for name, xs in samples.items():
            run(name, xs)

    def together(samples: dict[str, torch.Tensor]) -> None:
        threads = [threading.Thread(target=run, args=(n, xs), name=f"grader-ceiling-{n}", daemon=True)
                   for n, xs in samples.items()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    res = paired_ratio(sequential, together, make_inputs=lambda: (make_samples(),), pairs=pairs, warmup=1,
                       max_attempts=1)
    return ConcurrencyCeiling(ratio=res.median, interval=res.interval, pairs=res.ratios.n)


def share_interval(ratio: float, interval: tuple[float, float], ceiling: float,
                   ceiling_interval: tuple[float, float]) -> tuple[float, float]:
    """``100 * ratio / ceiling`` (%), both uncertainties combined as independent estimates
    (:func:`~graders.harness.quotient_interval`)."""
    lo, hi = quotient_interval(ratio, interval, ceiling, ceiling_interval)
    return 100.0 * lo, 100.0 * hi


def share_band(share_pct: float, ceiling_interval: tuple[float, float]) -> tuple[float, float]:
    """The ratios that reach ``share_pct`` of the ceiling at both ends of its interval: a ratio interval
    straddles this band whenever its :func:`share_interval` straddles ``share_pct`` (and when only the
    extremes, lowest ratio over highest ceiling, would)."""
    c_lo, c_hi = sorted(ceiling_interval)
    return share_pct / 100.0 * max(c_lo, 1e-9), share_pct / 100.0 * c_hi
