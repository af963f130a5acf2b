"""Interleaved A/B timing: the only honest way to compare two things on a noisy machine.

A and B run alternately (A B, then B A, ...) on the same fresh inputs; each pair gives one ratio
``time(A) / time(B)`` (above 1: B is faster). Drift in machine speed hits both sides of a pair
alike, so the median of paired ratios is far steadier than a ratio of two separate medians.

The verdict reads the median of the ratios, so its uncertainty is the confidence interval of that
median (:func:`~.stats.median_interval`), not the ratios' spread. While that interval straddles the
criterion's threshold (or, without one, while the ratios are noisy), another attempt of the same
size is taken (bounded) and pooled with the earlier ones: more pairs narrow the interval, and a
median of all of them cannot be moved by one noisy attempt. Noise is judged by
:attr:`~.stats.Summary.noise` (the largest of the IQR, plain and robust spreads), so a few lucky
pairs cannot hide a noisy machine; a result still noisy whose interval straddles the threshold
becomes ``inconclusive``.

With a pytest-benchmark ``benchmark`` fixture, the first attempt runs through
``benchmark.pedantic`` (one round = one pair), so its JSON holds the raw timing; the ratios and
every attempt go into ``benchmark.extra_info``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from ..verdicts import NOISE_LIMIT
from .checked import raise_first_problem, snapshot
from .stats import Summary, median_interval, straddles, summarize
from .timing import now_ns, timing_benchmark

__all__ = ["PairedResult", "alternating", "paired_ratio"]


@dataclass
class PairedResult:
    """Paired ratios ``a_ms / b_ms`` of the kept attempt and the per-side times."""

    ratios: Summary
    a_ms: Summary
    b_ms: Summary
    attempts: int
    spreads: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return self.ratios.median

    @property
    def interval(self) -> tuple[float, float]:
        """Confidence interval of the median ratio (see :func:`~.stats.median_interval`)."""
        return median_interval(self.ratios.samples)

    @property
    def noise(self) -> float:
        """The ratios' noise (:attr:`~.stats.Summary.noise`, IQR/median scale)."""
        return self.ratios.noise

    @property
    def noisy(self) -> bool:
        return self.noise > NOISE_LIMIT

    def details(self, a_name: str = "A", b_name: str = "B") -> dict[str, Any]:
        """Figures for the reports; ``a_name`` / ``b_name`` name the sides in what is over what."""
        over = f"time {a_name} / time {b_name}"
        return {
            "ratio_of": f"{over} (above 1: {b_name} is faster)",
            "median_ratio": self.median, "ratio_q1": self.ratios.q1, "ratio_q3": self.ratios.q3,
            "median_interval": list(self.interval), "ratio_spread": self.ratios.spread, "ratio_noise": self.noise,
            "pairs": self.ratios.n, "attempts": self.attempts,
            "attempt_spreads": self.spreads,
            f"{a_name}_median_ms": self.a_ms.median, f"{b_name}_median_ms": self.b_ms.median,
            "samples": {f"paired ratio {over} (speed-up of {b_name})": self.ratios.samples},
            "samples_unit": "x",
        }


def _one_attempt(a, b, make_inputs, pairs, warmup, sync, benchmark, check):
    """One attempt: ``warmup`` untimed pairs, then ``pairs`` timed ones; per-side times (ms) of the timed pairs.

    With ``check``, every pair's outputs (warm-up pairs too) are kept, copied after the clock stopped, and
    checked once the attempt is over; the first problem raises a SubmissionError.
    """
    a_ms: list[float] = []
    b_ms: list[float] = []
    kept: list[tuple] = []   # (out_a, out_b, inputs) per pair, in order, when checking
    state = {"i": 0}

    def timed(fn, inputs):
        if sync:
            sync()
        t0 = now_ns()
        out = fn(*inputs)  # only a reference is taken inside the timed region
        if sync:
            sync()
        return (now_ns() - t0) / 1e6, out

    def pair(*inputs):
        i = state["i"]
        state["i"] += 1
        first_a = i % 2 == 0  # alternate order: A B, B A, ...
        if first_a:
            ta, oa = timed(a, inputs)
            tb, ob = timed(b, inputs)
        else:
            tb, ob = timed(b, inputs)
            ta, oa = timed(a, inputs)
        if check:  # copies, before either side runs again (a reused output buffer is checked as returned)
            kept.append((snapshot(oa), snapshot(ob), inputs))
        if i >= warmup:
            a_ms.append(ta)
            b_ms.append(tb)

    def setup():
        return tuple(make_inputs()), {}

    benchmark = timing_benchmark(benchmark)
    if benchmark is not None:
        benchmark.pedantic(pair, setup=setup, rounds=pairs, warmup_rounds=warmup, iterations=1)
        # pedantic's warm-up rounds go through `pair` as well; only the timed rounds were kept.
    else:
        for _ in range(pairs + warmup):
            args, _ = setup()
            pair(*args)
    raise_first_problem(kept, check, warmup=warmup)  # outside every timed region; releases the outputs
    return a_ms, b_ms


def paired_ratio(a: Callable[..., Any], b: Callable[..., Any], *, make_inputs: Callable[[], tuple],
                 pairs: int = 30, warmup: int = 3, max_attempts: int = 3,
                 sync: Callable[[], None] | None = None, benchmark=None,
                 threshold: float | tuple[float, float] | None = None,
                 check: Callable[[Any, Any, tuple], str | None] | None = None) -> PairedResult:
    """Median of paired ratios ``time(a) / time(b)``: above 1 means ``b`` is faster.

    Args:
        a, b: callables taking the tuple from ``make_inputs``; typically a = baseline, b = learner's.
        make_inputs: fresh inputs for each pair (so a cached answer cannot pass), made untimed.
        pairs: timed pairs per attempt; warmup: untimed pairs first.
        max_attempts: attempts in all (each adds ``pairs`` pairs to the pool).
        sync: device synchronisation inside each timed region.
        benchmark: a pytest-benchmark fixture; the first attempt is timed through it.
        threshold: the criterion's pass threshold on the ratio, or the band ``(low, high)`` it lies in when
            the mark is itself measured (see ``straddles``). Given, another attempt is taken while the
            median's confidence interval straddles it; not given, while the ratios are noisy.
        check: ``check(out_a, out_b, inputs) -> str | None``, the criterion's correctness gate applied to
            the timed calls themselves: ``out_a`` / ``out_b`` are what ``a`` and ``b`` returned for the
            same ``inputs`` (the tuple from ``make_inputs``), copied after the clock stopped (see
            :mod:`.checked`); None means right, else a one-line problem (a ``SubmissionError`` raised
            by ``check`` counts as one). Called after each attempt, never inside a timed region, on
            every pair of the attempt, warm-up pairs included; the outputs are released once checked.
            The first problem raises ``SubmissionError("timed call k of n: <problem> - outputs are
            checked during timing too ...")``, so a ``b`` that is right when checked before timing and
            wrong while timed gets no speed credit. Without ``check``, what the calls return is dropped.
    Raises:
        SubmissionError: ``check`` found a problem in one of the timed (or warm-up) calls.
    """
    a_ms: list[float] = []
    b_ms: list[float] = []
    spreads = []
    for attempt in range(max_attempts):
        ta, tb = _one_attempt(a, b, make_inputs, pairs, warmup, sync, benchmark if attempt == 0 else None,
                              check)
        spreads.append(summarize([x / y for x, y in zip(ta, tb) if y > 0]).noise)
        a_ms += ta
        b_ms += tb
        result = PairedResult(ratios=summarize([x / y for x, y in zip(a_ms, b_ms) if y > 0]),
                              a_ms=summarize(a_ms), b_ms=summarize(b_ms), attempts=attempt + 1, spreads=spreads)
        if threshold is None:
            if not result.noisy:
                break
        else:
            if not straddles(result.interval, threshold):  # the whole interval on one side: decided
                break
    if benchmark is not None:
        benchmark.extra_info.update({k: v for k, v in result.details().items() if k != "samples"})
        benchmark.extra_info["ratios"] = result.ratios.samples
    return result


def alternating(first: Callable[[], Any], second: Callable[[], Any], rounds: int) -> None:
    """Run ``first`` and ``second`` side by side ``rounds`` times, swapping their order every round.

    For criteria that compare a learner's measurement with the grader's: each round's pair sees the
    same machine within a fraction of a second, and neither side always goes second.
    """
    for i in range(rounds):
        for run in ((first, second) if i % 2 == 0 else (second, first)):
            run()
