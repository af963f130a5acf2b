"""The grader's measurement tools: statistics exact, timing honest, paired ratios steady."""
from __future__ import annotations

import numpy as np
import pytest

from graders.harness import (MIN_SAMPLES, paired_ratio, percentile_label, poisson_gap_problem, summarize,
                             time_callable)
from graders.phase1.workloads import AsyncDevice, busy_wait_ms


def test_summary_matches_numpy():
    a = np.random.default_rng(0).lognormal(size=501)
    s = summarize(a)
    assert s.median == pytest.approx(np.median(a))
    assert s.p99 == pytest.approx(np.percentile(a, 99))
    assert s.std == pytest.approx(a.std())
    assert s.spread == pytest.approx((np.percentile(a, 75) - np.percentile(a, 25)) / np.median(a))


def test_percentiles_are_labelled_estimates_below_loadgen_minimums():
    assert MIN_SAMPLES == {90: 64, 95: 130, 99: 662}
    assert percentile_label(99, 661) == "p99 (estimate, 661 < 662 samples)"
    assert percentile_label(99, 662) == "p99"
    assert summarize(range(100)).is_estimate(95) and not summarize(range(100)).is_estimate(90)


def test_empty_samples_refused():
    with pytest.raises(ValueError):
        summarize([])


def test_time_callable_includes_sync_in_the_timed_region():
    dev = AsyncDevice(seed=0)
    with_sync = time_callable(dev.launch, repeats=10, warmup=1, sync=dev.sync)
    without = time_callable(dev.launch, repeats=10, warmup=1)
    dev.sync()
    assert with_sync.median_ms > 1.5  # jobs take 2-3 ms
    assert without.median_ms < 0.5  # only the launch was timed


def test_paired_ratio_sees_a_twice_faster_candidate():
    r = paired_ratio(lambda: busy_wait_ms(2.0), lambda: busy_wait_ms(1.0), make_inputs=tuple,
                     pairs=15, warmup=2)
    assert 1.6 < r.median < 2.4
    assert r.attempts >= 1 and len(r.ratios.samples) == 15
    assert set(r.details()) >= {"median_ratio", "ratio_q1", "ratio_q3", "pairs", "attempts"}


def test_paired_ratio_gives_fresh_inputs_each_pair():
    seen = []
    paired_ratio(lambda x: seen.append(x), lambda x: seen.append(x),
                 make_inputs=lambda: (np.random.rand(),), pairs=5, warmup=1)
    assert seen[0::2] == seen[1::2]  # A and B of a pair get the same input
    assert len(set(seen)) == len(seen) // 2  # and every pair a fresh one


def test_ratio_disagreement_uses_the_median_and_its_confidence_interval():
    from graders.harness import ratio_disagreement, summarize

    # One wild round of five cannot move the median; the median's 90 % interval of five rounds is min..max.
    value, (lo, hi) = ratio_disagreement(summarize([0.98, 1.0, 1.01, 1.02, 1.6]))
    assert value == pytest.approx(1.0) and lo == 0.0 and hi == pytest.approx(60.0)
    value, (lo, hi) = ratio_disagreement(summarize([0.5, 0.52, 0.55, 0.6, 0.61]))  # steadily half as fast
    assert value == pytest.approx(45.0) and lo == pytest.approx(39.0) and hi == pytest.approx(50.0)
    # Nine rounds narrow it to the 2nd smallest .. 2nd largest.
    value, (lo, hi) = ratio_disagreement(summarize([0.98, 0.99, 1.0, 1.0, 1.01, 1.01, 1.02, 1.03, 1.6]))
    assert value == pytest.approx(1.0) and lo == 0.0 and hi == pytest.approx(3.0)
    assert lo <= value <= hi


def test_alternating_swaps_the_order_every_round():
    from graders.harness import alternating

    order: list[str] = []
    alternating(lambda: order.append("grader"), lambda: order.append("yours"), 3)
    assert order == ["grader", "yours", "yours", "grader", "grader", "yours"]


def test_fresh_resident_bytes_raise_rss_by_their_size():
    import psutil

    from graders.phase1.workloads import fresh_resident_bytes

    proc = psutil.Process()
    before = proc.memory_info().rss
    block = fresh_resident_bytes(32 * 2**20)
    grown = proc.memory_info().rss - before
    assert block.dtype == np.uint8 and block.nbytes == 32 * 2**20 and int(block[::4096].sum()) == 8192
    assert abs(grown / (32 * 2**20) - 1) < 0.10, grown
    del block
    assert proc.memory_info().rss - before < 4 * 2**20  # the pages went back when the array was dropped


def _sent(schedule_s, stalls):
    """Send times of a sender that cannot send during a stall ``(start_s, length_s)`` and sends the late
    requests back to back (20 us apart) when it ends."""
    out, free = [], 0.0
    for due in schedule_s:
        t = max(due, free)
        for start, length in stalls:
            if start <= t < start + length:
                t = start + length
        out.append(t)
        free = t + 2e-5
    return np.asarray(out)


@pytest.mark.parametrize("seed", range(5))
def test_poisson_gap_rule_passes_exponential_gaps_and_sees_a_stalled_sender(seed):
    rng = np.random.default_rng(seed)
    schedule = np.cumsum(rng.exponential(1 / 300, size=450))
    assert poisson_gap_problem(np.diff(schedule)) is None
    stalled = _sent(schedule, [(t, 0.04) for t in (0.2, 0.6, 1.0)])   # three 40 ms stalls in 1.5 s
    assert "bursts" in poisson_gap_problem(np.diff(stalled))          # why the criterion asks the canary


def test_poisson_gap_rule_fails_regular_uniform_and_bursty_senders():
    rng = np.random.default_rng(0)
    assert "too regular" in poisson_gap_problem(np.full(449, 1 / 300))
    assert "too regular" in poisson_gap_problem(rng.uniform(0, 2 / 300, size=449))
    assert "too regular" in poisson_gap_problem(rng.gamma(4, 0.25 / 300, size=449))
    assert "bursts" in poisson_gap_problem(np.where(np.arange(449) % 5 == 0, 5 / 300, 1e-5))
    assert "too few" in poisson_gap_problem([0.01])
