"""Task 3.4: a load generator, closed loop and Poisson (perf_analyzer / MLPerf Server, in miniature).

Guide: DYNAMIC_BATCHING_GUIDE.md#task-34-a-load-generator
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from typing import Any, Callable

import numpy as np

from ..types import LoadReport

__all__ = ["run_closed_loop", "run_poisson"]

SubmitFn = Callable[[Any], Future]


# ---------------------------------------------------------------------------------------------------
# ## Task 3.4: a load generator
# ---------------------------------------------------------------------------------------------------
def run_closed_loop(submit_fn: SubmitFn, make_input: Callable[[int], Any], *, concurrency: int,
                    requests: int, timeout_s: float = 30.0) -> LoadReport:
    """Keep ``concurrency`` requests in flight until ``requests`` have been sent (closed loop).

    Each of ``concurrency`` client threads repeats: take the next request index, call
    ``submit_fn(x)``, wait for the future's result, record the latency, until every index is taken.
    This is perf_analyzer's ``--concurrency-range`` mode: a new request goes out only when an
    answer comes back, so the offered load adapts to the server's speed.

    Args:
        submit_fn: ``submit_fn(x) -> Future`` (for example ``batcher.submit``); may raise (refused).
        make_input: ``make_input(i) -> x`` for request index i = 0..requests-1. Called once per index,
            for every index, BEFORE the first request is sent (building inputs is not the server's time).
        concurrency: client threads, so requests in flight (int >= 1).
        requests: requests to send in all (int >= 1), exactly; no extra warm-up requests.
        timeout_s: longest wait for any one future (seconds); a timeout counts as a failure.

    Returns:
        ``LoadReport.from_latencies("closed_loop", latencies, failed=..., duration_s=...,
        concurrency=concurrency)``: latency of request i = from just before ``submit_fn`` to when
        ``result()`` returned, in ms (``time.perf_counter_ns``); a request whose ``submit_fn`` raised,
        or whose future raised or timed out, counts in ``failed``; ``duration_s`` from just before the
        clients start (the first send) to when the last request finished (answered or failed), in s.

    Raises:
        ValueError: ``concurrency < 1`` or ``requests < 1``.

    Tolerance the grader applies (p3.batching.loadgen_closed): against a grader server whose true latencies
    it records, your throughput, p50 and p95 within 10% (full marks 5%); exactly ``concurrency``
    requests in flight at the peak and never more; exactly ``requests`` sent; refusals counted in
    ``failed``; every input built before the first send.

    Guide: DYNAMIC_BATCHING_GUIDE.md#task-34-a-load-generator
    """
    # Step 1: validate; inputs = [make_input(i) for i in range(requests)] BEFORE any request is sent.
    # Step 2: min(concurrency, requests) threading.Thread clients. Each loops: take the next index (a shared
    #   iterator behind a threading.Lock), t0 = time.perf_counter_ns(), submit_fn(inputs[i]).result(timeout=timeout_s),
    #   latency = (time.perf_counter_ns() - t0) / 1e6; any exception (refused, failed, timed out) counts as failed.
    #   Keep the time the last request finished (answered or failed) too.
    # Step 3: start = time.perf_counter_ns() just before starting the clients; start and join them all.
    # Step 4: return LoadReport.from_latencies("closed_loop", latencies of the completed requests,
    #   failed=..., duration_s=(last finish - start) / 1e9, concurrency=concurrency).
    raise NotImplementedError("Task 3.4: see DYNAMIC_BATCHING_GUIDE.md#task-34-a-load-generator")


def run_poisson(submit_fn: SubmitFn, make_input: Callable[[int], Any], *, rate_per_s: float,
                duration_s: float, seed: int = 0, timeout_s: float = 30.0) -> LoadReport:
    """Send requests at random (Poisson) times at ``rate_per_s``, never waiting for answers (open loop).

    MLPerf's Server scenario: arrivals do not wait for the server, so a slow server builds a queue
    instead of slowing the clients down, as real users do. Gaps between arrivals are independent
    exponential draws with mean ``1 / rate_per_s``.

    Args:
        submit_fn: ``submit_fn(x) -> Future``; may raise (refused).
        make_input: ``make_input(i) -> x``, called once per request, for all of them, before the first
            send.
        rate_per_s: offered load, requests per second (> 0).
        duration_s: length of the arrival schedule in seconds (> 0): every arrival time < duration_s.
        seed: seeds ``np.random.default_rng`` for the schedule (same seed, same arrival times).
        timeout_s: longest wait for any future after the last send (seconds); late ones fail.

    Returns:
        ``LoadReport.from_latencies("poisson", latencies, failed=..., duration_s=...,
        offered_rate_per_s=rate_per_s)``. Latency of a request = from its SCHEDULED arrival time to
        its answer (so a sender that falls behind cannot hide queueing: no coordinated omission), in
        ms; refusals, exceptions and timeouts count in ``failed``; ``duration_s`` from the start of
        the schedule (taken once every input is built) to the last completion (an answer, a failed
        future or a refusal), in s.

    Raises:
        ValueError: ``rate_per_s <= 0`` or ``duration_s <= 0``.

    Tolerance the grader applies (p3.batching.loadgen_poisson): gates first: the arrival rate the
    grader's server sees within 15% of ``rate_per_s`` (or 4 standard errors of a Poisson count, if
    wider), inter-arrival gaps exponential (coefficient of variation 0.75-1.25, so not evenly
    spaced; measured again when the machine stalled), at least 3 requests in flight when the server
    is slower than the gaps (open loop), and counts and ``offered_rate_per_s`` that match; then your
    p50/p95/p99 within 10% (full marks 5%) of its true latencies.

    Guide: DYNAMIC_BATCHING_GUIDE.md#task-34-a-load-generator
    """
    # Step 1: validate. rng = np.random.default_rng(seed); arrival times = running sums of
    #   rng.exponential(1 / rate_per_s) while they are < duration_s. Then build every input.
    # Step 2: start = time.perf_counter_ns() (after building the inputs); for each arrival: time.sleep until
    #   start + its time, then fut = submit_fn(x) (an exception: failed) and fut.add_done_callback(...) recording
    #   time.perf_counter_ns() when it completes. Never call result() in this loop: that would close the loop.
    # Step 3: after the last send, wait for every future (a shared deadline of timeout_s); latency of request
    #   i = its completion time - (start + its SCHEDULED time), in ms; exceptions and timeouts count as failed.
    # Step 4: return LoadReport.from_latencies("poisson", latencies, failed=..., duration_s=(last completion -
    #   start) / 1e9, offered_rate_per_s=rate_per_s).
    raise NotImplementedError("Task 3.4: see DYNAMIC_BATCHING_GUIDE.md#task-34-a-load-generator")
