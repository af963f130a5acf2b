"""Task 3.1: the worker wakes when a batch is due, not on a timer of its own, and skips cancelled requests.

Both are invisible to throughput and to a latency bound under steady load: a worker that sleeps the
delay (instead of waiting on the condition) still forms full batches and still meets a bound of
delay + compute, and one that computes requests their clients cancelled still answers everyone
else correctly. So the grader looks at the worker's model calls themselves (``Instrumented`` logs
when each call starts and which requests it holds) against the grader's own submit times.
"""
from __future__ import annotations

import statistics
import time
from concurrent.futures import Future


from ...harness.timing import now_ns
from ...plugin import criterion
from .common import atol_for, cpu_threads, device_of, make_batcher, no_tf32, probe, stop
from .workloads import Instrumented, build, compare, expected_outputs, fresh_inputs, tags_of

#: Trials of each timed check; the median decides, so one preempted trial cannot.
TRIALS = 5
#: A full queue must reach the model within this long of the submit that filled it (ms).
FULL_BATCH_LIMIT_MS = 25.0
#: A lone request must reach the model within this long after its max_queue_delay (ms).
LONE_LATE_LIMIT_MS = 20.0
#: The delays of the two timed checks (ms): long, so that waiting for it instead of a full batch shows.
FULL_DELAY_MS, LONE_DELAY_MS = 300.0, 60.0


def _first_call_after(inst: Instrumented, tags: set[float], timeout_s: float = 3.0) -> int | None:
    """Start time (ns) of the first model call holding any of ``tags``; None if none came in time."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        starts = [s for s, _, _, ts in list(inst.calls) if tags.intersection(ts)]
        if starts:
            return min(starts)
        time.sleep(0.001)
    return None


def _settle(futs: list[Future], timeout_s: float = 5.0) -> None:
    end = time.monotonic() + timeout_s
    for f in futs:
        try:
            f.exception(timeout=max(0.0, end - time.monotonic()))
        except BaseException:  # noqa: BLE001 - cancelled or timed out: the checks look at the futures
            pass


def _full_batch_ms(learner, inst, shape, mbs: int) -> float:
    """ms from the submit that makes max_batch_size requests wait to the model call that takes them."""
    batcher = make_batcher(learner, inst, input_shape=shape, max_batch_size=mbs, max_queue_delay_ms=FULL_DELAY_MS,
                           max_queue_size=4 * mbs)
    try:
        probe(learner, batcher.submit, fresh_inputs(1, shape)[0])
        xs = fresh_inputs(mbs, shape)
        futs = [batcher.submit(x) for x in xs[:-1]]
        time.sleep(0.02)                      # the worker is now waiting for the delay
        t_fill = now_ns()
        futs.append(batcher.submit(xs[-1]))
        start = _first_call_after(inst, set(tags_of(xs[-1:])))
        _settle(futs)
    finally:
        stop(batcher)
    return float("inf") if start is None else (start - t_fill) / 1e6


def _lone_late_ms(learner, inst, shape, mbs: int) -> float:
    """ms past its max_queue_delay that a lone request (the batcher idle before it) reached the model."""
    batcher = make_batcher(learner, inst, input_shape=shape, max_batch_size=mbs, max_queue_delay_ms=LONE_DELAY_MS,
                           max_queue_size=4 * mbs)
    try:
        probe(learner, batcher.submit, fresh_inputs(1, shape)[0])
        time.sleep(0.15)                      # idle: a worker polling with sleep is mid-nap
        x = fresh_inputs(1, shape)
        t0 = now_ns()
        fut = batcher.submit(x[0])
        start = _first_call_after(inst, set(tags_of(x)))
        _settle([fut])
    finally:
        stop(batcher)
    return float("inf") if start is None else (start - t0) / 1e6 - LONE_DELAY_MS


def _cancellation(learner, inst, model, shape, mbs: int, dev: str, atol: float) -> dict:
    """Cancel half of a waiting batch: the model must never see them; the rest answered right."""
    batcher = make_batcher(learner, inst, input_shape=shape, max_batch_size=mbs, max_queue_delay_ms=FULL_DELAY_MS,
                           max_queue_size=4 * mbs)
    try:
        probe(learner, batcher.submit, fresh_inputs(1, shape)[0])
        xs = fresh_inputs(mbs, shape)
        half = mbs // 2
        futs = [batcher.submit(x) for x in xs[:half]]
        cancelled = [i for i in range(0, half, 2) if futs[i].cancel()]
        futs += [batcher.submit(x) for x in xs[half:]]      # fills the batch: due at once
        _settle(futs)
        after = batcher.submit(fresh_inputs(1, shape)[0])
        _settle([after])
    finally:
        stop(batcher)
    seen = {t for _, _, _, tags in inst.calls for t in tags}
    tags = tags_of(xs)
    computed = [i for i in cancelled if tags[i] in seen]
    kept = [i for i in range(mbs) if i not in set(cancelled)]
    outputs = [futs[i].result() if futs[i].done() and not futs[i].cancelled() and futs[i].exception() is None
               else None for i in kept]
    bad, _ = compare(outputs, expected_outputs(model, xs[kept], dev), atol)
    still_cancelled = sum(futs[i].cancelled() for i in cancelled)
    return {"cancelled": len(cancelled), "cancelled_computed": len(computed), "kept_wrong": len(bad),
            "cancel_state_lost": len(cancelled) - still_cancelled,
            "after_ok": after.done() and not after.cancelled() and after.exception() is None}


@criterion("p3.batching.dispatch")
def test_dispatch(grade, learner):
    """A full queue goes to the model at once; a lone request at its delay; cancelled requests never."""
    no_tf32(grade)
    dev = device_of(grade)
    model, shape = build("digits_cnn", dev)
    inst = Instrumented(model, "digits_cnn", device=dev)
    mbs = 16
    with cpu_threads(grade):
        full = [_full_batch_ms(learner, inst, shape, mbs) for _ in range(TRIALS)]
        lone = [_lone_late_ms(learner, inst, shape, mbs) for _ in range(TRIALS)]
        inst.reset()
        cancel = _cancellation(learner, inst, model, shape, mbs, dev, atol_for(grade))
    full_ms, lone_ms = statistics.median(full), statistics.median(lone)
    problems = []
    if not full_ms <= FULL_BATCH_LIMIT_MS:
        problems.append(f"a full batch waited {full_ms:.0f} ms for the model after the submit that filled it "
                        f"(median of {TRIALS}; delay {FULL_DELAY_MS:g} ms, allowed {FULL_BATCH_LIMIT_MS:g} ms): the "
                        f"worker slept instead of waiting on the condition, which submit's notify() wakes")
    if not lone_ms <= LONE_LATE_LIMIT_MS:
        problems.append(f"a lone request reached the model {lone_ms:.0f} ms after its {LONE_DELAY_MS:g} ms delay "
                        f"(median of {TRIALS}; allowed {LONE_LATE_LIMIT_MS:g} ms): the worker wakes on a timer of its "
                        f"own, not at the oldest request's deadline")
    if lone_ms < -5.0:
        problems.append(f"a lone request reached the model {-lone_ms:.0f} ms before its {LONE_DELAY_MS:g} ms delay "
                        f"ran out: with a queue below max_batch_size the worker must wait for the delay")
    if cancel["cancelled_computed"]:
        problems.append(f"{cancel['cancelled_computed']} of {cancel['cancelled']} requests cancelled by their "
                        f"clients while queued were computed by the model anyway: take a request only if "
                        f"future.set_running_or_notify_cancel() returns True")
    if cancel["cancel_state_lost"]:
        problems.append(f"{cancel['cancel_state_lost']} cancelled futures were given a result or an error afterwards")
    if cancel["kept_wrong"]:
        problems.append(f"{cancel['kept_wrong']} requests batched with cancelled ones got a wrong or no answer")
    if not cancel["after_ok"]:
        problems.append("after a batch with cancelled requests, the next request got no answer: the worker died")
    grade.record(len(problems),
                 message="; ".join(problems) if problems else
                 f"a full batch reached the model {full_ms:.1f} ms after the submit that filled it, a lone request "
                 f"{lone_ms:+.1f} ms from its {LONE_DELAY_MS:g} ms delay (medians of {TRIALS}); "
                 f"{cancel['cancelled']} cancelled requests were never computed",
                 details={"full_batch_dispatch_ms": full_ms, "lone_dispatch_late_ms": lone_ms,
                          "full_batch_trials_ms": full, "lone_late_trials_ms": lone, **cancel,
                          "checks_failed": len(problems), "problems": problems})
