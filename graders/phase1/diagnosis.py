"""What a learner's timing got wrong, read from the grader's witness of the same calls.

Shared by the Phase 1 timing criteria (Tasks 1.2, 1.3, 1.6). Each learner figure is compared with the
grader's clock on the very calls the learner timed (:class:`graders.harness.Witness`), so the ratio
``yours / truth`` says what the timed region held, whatever the machine did meanwhile.
"""
from __future__ import annotations

__all__ = ["timed_region_hint", "calls_hint"]


def calls_hint(calls: int, expected: int, what: str = "fn") -> str:
    """A hint when ``what`` was called a different number of times than warm-up + iterations."""
    if calls == expected:
        return ""
    return (f"{what} was called {calls} times in one measurement; warm-up + iterations is {expected}. "
            f"Call it exactly once per warm-up step and once per timed sample.")


def timed_region_hint(ratio: float, what: str = "fn()", *, one_call_each: bool = False) -> str:
    """A hint from the median of ``your time / the grader's time of the same call`` (1.0 = right).

    Args:
        ratio: median over rounds of your per-call figure (ms) / the witnessed per-call time (ms);
            for throughput pass the inverse of the samples/s ratio, so that above 1 means "slower".
        what: the call as the learner wrote it, for the message.
        one_call_each: the grader counted exactly warm-up + iterations calls, so a ratio near 2 is extra
            work of another kind, never "about 2 calls" (building a batch can cost as much as a call).
    """
    if 0.9 <= ratio <= 1.1:
        return ""
    if ratio < 0.9:
        return (f"Your figure is {ratio:.2f}x the real duration of the {what} calls you timed: the timed region misses "
                f"part of each call. Read the clock (time.perf_counter_ns) right before and right after {what}, "
                f"call sync() before the second read, and don't use a CPU-time clock such as time.process_time.")
    calls = round(ratio)
    if calls >= 2 and abs(ratio - calls) < 0.25 and not one_call_each:
        return (f"Your figure is {ratio:.2f}x the grader's time of one {what} call: your timed region holds about "
                f"{calls} calls. Time exactly one {what} per sample (warm-up calls go before the timed loop).")
    return (f"Your figure is {ratio:.2f}x the grader's time of the same {what} calls: your timed region holds "
            f"extra work besides {what} (building inputs, appending to lists, printing, a second model call). "
            f"Keep only {what} (and sync) between the two clock reads.")
