"""Task 3.2: bad requests, a failing model, overload and shutdown, each provoked by the grader."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np
import psutil
import torch

from ...checks import expect
from ...harness import closed_loop, summarize
from ...harness.timing import now_ns
from ...plugin import criterion
from .common import cpu_threads, learner_error_class, make_batcher, probe, stop
from .workloads import (POISON, SHORT, Instrumented, SleepModel, build, chain_text, compare, expected_outputs,
                        fresh_inputs, tags_of, thread_count_settles)


def _bad_inputs(shape: tuple[int, ...]) -> list[tuple[str, object, str]]:
    """(what, input, the word its error message must contain)."""
    c, h, w = shape
    return [
        ("a smaller image", torch.randn(c, h // 2, w // 2), "shape"),
        ("a batch dimension", torch.randn(1, c, h, w), "shape"),
        ("float64", torch.randn(c, h, w, dtype=torch.float64), "dtype"),
        ("int64", torch.zeros(c, h, w, dtype=torch.int64), "dtype"),
        ("a numpy array", np.zeros(shape, dtype=np.float32), "ndarray"),
        ("a list", [[0.0] * w] * h, "list"),
    ]


def _check_request_problems(learner, shape: tuple[int, ...], invalid) -> list[str]:
    """check_request on its own: a valid input back unchanged, each malformed one refused with InvalidRequest."""
    problems: list[str] = []
    good = torch.randn(*shape)
    got = learner.call("check_request", good, input_shape=shape, dtype=torch.float32)
    expect(isinstance(got, torch.Tensor) and torch.equal(got, good), "check_request must return a valid input unchanged")
    for what, x, word in _bad_inputs(shape):
        try:
            learner.call("check_request", x, input_shape=shape, dtype=torch.float32)
            problems.append(f"check_request accepted {what}")
        except Exception as e:  # noqa: BLE001 - LearnerError wraps what it raised
            cause = e.__cause__ or e.__context__
            text = str(e)
            if not ("InvalidRequest" in text or isinstance(cause, invalid)):
                problems.append(f"check_request on {what}: expected InvalidRequest, got {text[:120]}")
            elif word.lower() not in text.lower():
                problems.append(f"check_request on {what}: the message should mention {word!r}: {text[:120]}")
    return problems


def _poisoned_inputs(n: int, shape: tuple[int, ...]) -> tuple[list[torch.Tensor], list[int]]:
    """n fresh inputs, 4 of them (spread out) made to poison the model; (inputs, poisoned indices)."""
    xs = fresh_inputs(n, shape)
    poisoned = sorted(range(17, n, n // 4))[:4]
    for i in poisoned:
        xs[i].view(-1)[0] = POISON
    return xs, poisoned


def _bad_client(batcher, shape: tuple[int, ...], invalid, stop_bad: threading.Event, bad_log: list[str]) -> None:
    """Submit malformed inputs in turn until stopped; log each one not refused with InvalidRequest."""
    k = 0
    while not stop_bad.is_set():
        what, x, _ = _bad_inputs(shape)[k % 6]
        k += 1
        try:
            fut = batcher.submit(x)
        except invalid:
            pass
        except Exception as e:  # noqa: BLE001
            bad_log.append(f"submit({what}) raised {type(e).__name__}, not InvalidRequest")
        else:
            try:
                fut.result(timeout=2)
                bad_log.append(f"submit({what}) was accepted and answered")
            except invalid:
                pass
            except Exception as e:  # noqa: BLE001
                bad_log.append(f"submit({what}) failed with {type(e).__name__}, not InvalidRequest")
        time.sleep(0.003)


def _serve_with_bad_client(grade, learner, inst, shape, xs, invalid):
    """xs through a batcher while a bad client submits malformed inputs, then 32 more; (run, after, bad submits logged)."""
    bad_log: list[str] = []
    with cpu_threads(grade):
        batcher = make_batcher(learner, inst, input_shape=shape, max_batch_size=8, max_queue_delay_ms=5,
                               max_queue_size=1024)
        try:
            probe(learner, batcher.submit, fresh_inputs(1, shape)[0])
            stop_bad = threading.Event()
            t = threading.Thread(target=_bad_client, args=(batcher, shape, invalid, stop_bad, bad_log),
                                 name="grader-bad-client", daemon=True)
            t.start()
            run = closed_loop(batcher.submit, xs, concurrency=16, total_timeout_s=60)
            stop_bad.set()
            t.join(5)
            after = closed_loop(batcher.submit, fresh_inputs(32, shape), concurrency=8, total_timeout_s=30)
        finally:
            stop(batcher)
    return run, after, bad_log


def _batched_with_poison(inst, xs, poisoned: list[int]) -> set[int]:
    """The requests the model saw in a batch with a poisoned one, and the poisoned ones themselves."""
    index = {t: i for i, t in enumerate(tags_of(xs))}
    index.pop(POISON, None)
    shared = {index[t] for _, _, _, tags in inst.calls if POISON in tags for t in tags if t in index}
    shared |= set(poisoned)
    return shared


def _poison_problems(run, want, poisoned: list[int], shared: set[int], n: int) -> list[str]:
    """Poisoned requests must fail with the model's error; every request outside their batches must be answered right."""
    problems: list[str] = []
    for i in poisoned:
        if run.errors[i] is None:
            problems.append(f"poisoned request {i} got an answer although the model raised")
        elif "grader poison" not in chain_text(run.errors[i]):
            problems.append(f"poisoned request {i} failed without the model's error: {chain_text(run.errors[i])[:150]}")
    bad_out, _ = compare(run.outputs, want, 1e-4)
    collateral = [i for i in range(n) if i not in shared and (run.errors[i] is not None or i in set(bad_out))]
    if collateral:
        e = run.errors[collateral[0]]
        problems.append(f"{len(collateral)} valid requests outside the failing batches failed or were wrong "
                        f"(first: {chain_text(e)[:150] if e else 'wrong output'})")
    wrong_shared = [i for i in shared - set(poisoned) if run.errors[i] is None and i in set(bad_out)]
    if wrong_shared:
        problems.append(f"{len(wrong_shared)} requests batched with a poisoned one got a wrong answer")
    return problems


def _row_count_problems(grade, learner, model, shape, model_error) -> tuple[list[str], dict]:
    """A model that returns one row too few for some batches: every request of such a batch must fail.

    Without the row-count check, ``zip(batch, rows)`` quietly gives the first B - 1 requests an answer
    and leaves the last one waiting forever; with one row too many, every request would get a row,
    whatever the model computed. Either way the output does not match the batch, so none can be trusted.
    """
    inst = Instrumented(model, "digits_cnn", short=True)
    xs = fresh_inputs(64, shape)
    marked = [9, 41]
    for i in marked:
        xs[i].view(-1)[0] = SHORT
    want = expected_outputs(model, xs)
    with cpu_threads(grade):
        batcher = make_batcher(learner, inst, input_shape=shape, max_batch_size=8, max_queue_delay_ms=5,
                               max_queue_size=256)
        try:
            probe(learner, batcher.submit, fresh_inputs(1, shape)[0])
            run = closed_loop(batcher.submit, xs, concurrency=8, result_timeout_s=3, total_timeout_s=40)
            after = closed_loop(batcher.submit, fresh_inputs(16, shape), concurrency=8, total_timeout_s=20)
        finally:
            stop(batcher)
    index = {t: i for i, t in enumerate(tags_of(xs))}
    index.pop(SHORT, None)                   # the marked requests share one tag: added by index below
    short_batches = [[index[t] for t in tags if t in index] for _, _, _, tags in inst.calls if SHORT in tags]
    in_short = {i for b in short_batches for i in b} | set(marked)
    answered = sorted(i for i in in_short if run.errors[i] is None)
    hung = sorted(i for i in in_short if isinstance(run.errors[i], TimeoutError))
    other = sorted(i for i in in_short if run.errors[i] is not None and i not in hung
                   and not isinstance(run.errors[i], model_error))
    bad_out = set(compare(run.outputs, want, 1e-4)[0])
    collateral = sorted(i for i in range(len(xs)) if i not in in_short and (run.errors[i] is not None or i in bad_out))
    problems = []
    if answered or hung:
        problems.append(f"the model returned one row too few for {len(short_batches)} batches "
                        f"({len(in_short)} requests): {len(answered)} of their requests got an answer "
                        f"anyway and {len(hung)} never got one; check outputs.shape[0] == len(batch) and fail the "
                        f"whole batch with ModelError")
    if other:
        problems.append(f"{len(other)} requests of a batch with the wrong row count failed with "
                        f"{type(run.errors[other[0]]).__name__}, not ModelError")
    if collateral:
        problems.append(f"{len(collateral)} requests outside those batches failed or were wrong")
    if after.failed:
        problems.append(f"after a batch with the wrong row count, {after.failed} of 16 new requests failed")
    return problems, {"wrong_rows_batches": len(short_batches), "wrong_rows_answered": len(answered),
                      "wrong_rows_unsettled": len(hung),
                      "wrong_rows_mishandled": len(answered) + len(hung) + len(other)}


@criterion("p3.batching.bad_requests")
def test_bad_requests(grade, learner):
    """Malformed requests are refused alone; a model that raises fails its batch, not the batcher."""
    invalid = learner_error_class(learner, "InvalidRequest")
    model, shape = build("digits_cnn")
    # Part 1: check_request on its own.
    problems = _check_request_problems(learner, shape, invalid)
    # Part 2: through the batcher, while valid clients keep it busy; some inputs poison the model.
    inst = Instrumented(model, "digits_cnn", poison=True)
    n = 240 if grade.quick else 400
    xs, poisoned = _poisoned_inputs(n, shape)
    want = expected_outputs(model, xs)
    run, after, bad_log = _serve_with_bad_client(grade, learner, inst, shape, xs, invalid)
    if bad_log:
        problems.append(f"{len(bad_log)} malformed submits mishandled (first: {bad_log[0]})")
    shared = _batched_with_poison(inst, xs, poisoned)
    problems += _poison_problems(run, want, poisoned, shared, n)
    if after.failed:
        problems.append(f"after the model raised, {after.failed} of 32 new requests failed: the batcher died")
    # Part 3: a model whose output has the wrong number of rows.
    rows_problems, rows = _row_count_problems(grade, learner, model, shape, learner_error_class(learner, "ModelError"))
    problems += rows_problems
    grade.record(len(problems), message="; ".join(problems) if problems else
                 f"6 kinds of malformed input refused with InvalidRequest; {len(poisoned)} poisoned requests "
                 f"failed with the model's error ({len(shared) - len(poisoned)} batch-mates failed with them), "
                 f"the other {n - len(shared)} answered correctly, and the batcher kept serving; the "
                 f"{rows['wrong_rows_batches']} batches the model returned one row too few for failed whole",
                 details={"problems": problems, "poisoned": poisoned, "batched_with_poison": sorted(shared),
                          "bad_submits_mishandled": len(bad_log), "after_failed": after.failed, **rows})


@dataclass
class _Flood:
    """What one flood of submits produced: accepted futures, refusals, submit() times, outstanding and RSS peaks."""
    rss0: int
    rss_peak: int
    accepted_n: int = 0
    done: int = 0
    peak: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    accepted: list[tuple[int, object]] = field(default_factory=list)
    refused: list[BaseException] = field(default_factory=list)
    other: list[BaseException] = field(default_factory=list)
    submit_ms: list[float] = field(default_factory=list)

    def on_done(self, _) -> None:
        """A future's done callback: one fewer outstanding."""
        with self.lock:
            self.done += 1


def _flood(batcher, pool, flood_s: float, overloaded, log: _Flood, proc) -> None:
    """Submit as fast as possible for flood_s seconds, timing every submit() and recording what it did."""
    end = now_ns() + int(flood_s * 1e9)
    k = 0
    while now_ns() < end:
        x = pool[k % len(pool)]
        t0 = now_ns()
        try:
            fut = batcher.submit(x)
        except overloaded as e:
            log.submit_ms.append((now_ns() - t0) / 1e6)
            log.refused.append(e)
        except Exception as e:  # noqa: BLE001
            log.submit_ms.append((now_ns() - t0) / 1e6)
            log.other.append(e)
        else:
            log.submit_ms.append((now_ns() - t0) / 1e6)
            with log.lock:
                log.accepted_n += 1
                log.peak = max(log.peak, log.accepted_n - log.done)
            log.accepted.append((k % len(pool), fut))
            fut.add_done_callback(log.on_done)
        k += 1
        if k % 2048 == 0:
            log.rss_peak = max(log.rss_peak, proc.memory_info().rss)


def _run_flood(batcher, pool, flood_s: float, overloaded, log: _Flood, proc) -> None:
    """The flood on a grader thread; submit() must never block it for more than 10 s."""
    t = threading.Thread(target=_flood, args=(batcher, pool, flood_s, overloaded, log, proc), name="grader-flood",
                         daemon=True)
    t.start()
    t.join(flood_s + 10)
    expect(not t.is_alive(), "submit() blocked for more than 10 s under overload: refuse with Overloaded instead")


def _settle_accepted(accepted: list[tuple[int, object]], pool) -> tuple[int, list[int], list[int]]:
    """Wait (10 s in all) for the accepted requests; (never finished, failed, wrong answers)."""
    settle_end = time.monotonic() + 10
    for _, fut in accepted:
        try:
            fut.result(timeout=max(0.01, settle_end - time.monotonic()))
        except Exception:  # noqa: BLE001 - counted below
            pass
    hung = sum(1 for _, f in accepted if not f.done())
    failed = [i for i, f in accepted if f.done() and f.exception() is not None]
    wrong = [i for i, f in accepted if f.done() and f.exception() is None
             and not torch.allclose(f.result(), pool[i][:4] * 2)]
    return hung, failed, wrong


def _backpressure_gates(log: _Flood, sub, queue: int, limit: int, hung: int, failed, wrong, recovery) -> list[str]:
    """Why the flood fails outright, if it does: wrong refusals, none at all, an unbounded queue, lost requests, no recovery."""
    gates = []
    other, refused = log.other, log.refused
    if other:
        gates.append(f"{len(other)} refusals were not Overloaded (first: {type(other[0]).__name__}: {str(other[0])[:100]})")
    if not refused:
        gates.append(f"none of {sub.n} submits was refused: the queue must stop at max_queue_size={queue} "
                     f"and raise Overloaded")
    elif not str(refused[0]).strip():
        gates.append("Overloaded was raised without a message: say how full the queue is")
    if log.peak > limit:
        gates.append(f"{log.peak} requests were waiting at once; max_queue_size={queue} allows about {limit}")
    if hung or failed or wrong:
        gates.append(f"of the {len(log.accepted)} accepted requests {hung} never finished, {len(failed)} failed, "
                     f"{len(wrong)} got a wrong answer")
    if recovery.failed:
        gates.append(f"after the flood, {recovery.failed} of 160 requests at a sustainable load still failed "
                     f"({recovery.error_kinds()}): no recovery")
    return gates


@criterion("p3.batching.backpressure")
def test_backpressure(grade, learner):
    """A flood far beyond capacity: prompt Overloaded refusals, a bounded queue, recovery afterwards.

    The model sleeps 10 ms per batch of up to 8 (800 req/s at most); one grader thread submits as
    fast as it can for a while. Graded: p99 of the time a submit() call takes during the flood.
    """
    overloaded = learner_error_class(learner, "Overloaded")
    model = SleepModel(10.0)
    mbs, queue = 8, 32
    limit = queue + 2 * mbs + 1
    batcher = make_batcher(learner, model, input_shape=(16,), max_batch_size=mbs, max_queue_delay_ms=2,
                           max_queue_size=queue)
    pool = fresh_inputs(4096, (16,))
    proc = psutil.Process()
    rss0 = proc.memory_info().rss
    log = _Flood(rss0=rss0, rss_peak=rss0)
    try:
        probe(learner, batcher.submit, pool[0])
        _run_flood(batcher, pool, 0.5 if grade.quick else 1.0, overloaded, log, proc)
        hung, failed, wrong = _settle_accepted(log.accepted, pool)
        recovery = closed_loop(batcher.submit, fresh_inputs(160, (16,)), concurrency=mbs, total_timeout_s=30)
    finally:
        stop(batcher, drain=False)
    sub = summarize(log.submit_ms)
    details = {"submits": sub.n, "refused": len(log.refused), "accepted": len(log.accepted), "other_errors": len(log.other),
               "peak_outstanding": log.peak, "allowed_outstanding": limit, "submit_p50_ms": sub.median,
               "submit_p99_ms": sub.p99, "submit_max_ms": sub.max, "rss_growth_mb": (log.rss_peak - rss0) / 2**20,
               "recovery_failed": recovery.failed, "hung": hung, "failed_accepted": len(failed),
               # every k-th submit time (at most ~4,000 kept): the distribution the p99 was read from
               "samples": {"submit() ms during the flood": log.submit_ms[::max(1, len(log.submit_ms) // 4000)]},
               "samples_unit": "ms"}
    gates = _backpressure_gates(log, sub, queue, limit, hung, failed, wrong, recovery)
    if gates:
        grade.fail("; ".join(gates), value=sub.p99, details=details)
        return
    grade.record(sub.p99, details=details,
                 message=f"{len(log.refused)} of {sub.n} submits refused with Overloaded, {len(log.accepted)} accepted "
                         f"and answered; at most {log.peak} outstanding (max_queue_size {queue}); "
                         f"submit() p50 {sub.median * 1000:.0f} us, p99 {sub.p99:.2f} ms; recovered: "
                         f"{recovery.completed}/160 answered after the flood")


def _new_batcher(learner, ms: float = 40.0):
    """A batcher over a model that sleeps ms per batch of up to 4; (model, batcher)."""
    model = SleepModel(ms)
    return model, make_batcher(learner, model, input_shape=(16,), max_batch_size=4, max_queue_delay_ms=1,
                               max_queue_size=256)


def _timed_close(learner, b, **kw) -> float:
    """Seconds the learner's close(**kw) took."""
    t0 = time.monotonic()
    learner.call_obj(b.close, what="DynamicBatcher.close()", **kw)
    return time.monotonic() - t0


def _check_idle_close(learner, baseline: int, checks: dict[str, bool]) -> None:
    """close() on an idle batcher (a stub fails here, naming its task) leaves no thread behind."""
    _, b = _new_batcher(learner)
    try:
        _timed_close(learner, b)
    finally:
        stop(b)
    checks["idle close leaves no thread"] = thread_count_settles(baseline) <= baseline


def _check_drain(learner, closed_cls, xs, baseline: int, checks: dict[str, bool], notes: list[str]) -> None:
    """drain=True runs everything queued before returning; then submit raises BatcherClosed, a second close is harmless."""
    _, b = _new_batcher(learner)
    futs = [learner.call_obj(b.submit, x, what="DynamicBatcher.submit(x)") for x in xs]
    took = _timed_close(learner, b, drain=True)
    done = [f.done() for f in futs]
    ok = [f.done() and f.exception() is None and torch.allclose(f.result(), x[:4] * 2) for f, x in zip(futs, xs)]
    checks["drain=True answers every queued request before returning"] = all(ok)
    if not all(ok):
        notes.append(f"after close(drain=True) {sum(done)}/24 done, {sum(ok)}/24 correct (took {took:.2f} s)")
    try:
        b.submit(xs[0])
        checks["submit after close raises BatcherClosed"] = False
    except closed_cls:
        checks["submit after close raises BatcherClosed"] = True
    except Exception as e:  # noqa: BLE001
        checks["submit after close raises BatcherClosed"] = False
        notes.append(f"submit after close raised {type(e).__name__}, not BatcherClosed")
    try:
        b.close()
        checks["a second close is harmless"] = True
    except Exception as e:  # noqa: BLE001
        checks["a second close is harmless"] = False
        notes.append(f"a second close() raised {type(e).__name__}: {e}")
    checks["drain=True leaves no thread"] = thread_count_settles(baseline) <= baseline


def _check_no_drain(learner, xs, baseline: int, checks: dict[str, bool], notes: list[str]) -> None:
    """drain=False returns within one batch, every request settled (most of them failed), none hanging."""
    _, b = _new_batcher(learner)
    futs = [learner.call_obj(b.submit, x, what="DynamicBatcher.submit(x)") for x in xs]
    time.sleep(0.02)
    took = _timed_close(learner, b, drain=False)
    checks["drain=False returns within 0.5 s"] = took <= 0.5
    end = time.monotonic() + 1.0
    while not all(f.done() for f in futs) and time.monotonic() < end:
        time.sleep(0.01)
    settled = sum(f.done() for f in futs)
    dropped = sum(1 for f in futs if f.done() and (f.cancelled() or f.exception() is not None))
    wrong = sum(1 for f, x in zip(futs, xs) if f.done() and not f.cancelled() and f.exception() is None
                and not torch.allclose(f.result(), x[:4] * 2))
    checks["drain=False settles every request within 1 s"] = settled == len(futs)
    checks["drain=False drops the queue instead of running it"] = dropped >= 12 and wrong == 0
    if settled < len(futs) or dropped < 12 or wrong:
        notes.append(f"close(drain=False) took {took:.2f} s; {settled}/24 settled, {dropped} dropped, {wrong} wrong")
    stop(b)
    checks["drain=False leaves no thread"] = thread_count_settles(baseline) <= baseline


def _check_context_manager(learner, xs, baseline: int, checks: dict[str, bool]) -> None:
    """Leaving a `with` block drains the batcher and stops its threads."""
    _, b = _new_batcher(learner, 5.0)
    with b:
        futs = [b.submit(x) for x in xs[:8]]
    checks["`with` drains and stops"] = all(f.done() for f in futs) and thread_count_settles(baseline) <= baseline


@criterion("p3.batching.clean_shutdown")
def test_clean_shutdown(grade, learner):
    """close(drain=True) finishes the queue, close(drain=False) fails it promptly, nothing hangs or leaks."""
    closed_cls = learner_error_class(learner, "BatcherClosed")
    checks: dict[str, bool] = {}
    notes: list[str] = []
    baseline = threading.active_count()
    _check_idle_close(learner, baseline, checks)
    xs = fresh_inputs(24, (16,))
    _check_drain(learner, closed_cls, xs, baseline, checks, notes)
    _check_no_drain(learner, xs, baseline, checks, notes)
    _check_context_manager(learner, xs, baseline, checks)
    leaked = threading.active_count() - baseline
    if leaked > 0:
        notes.append(f"{leaked} threads still running: {[t.name for t in threading.enumerate()][-leaked:]}")
    passed = sum(checks.values())
    failing = [k for k, v in checks.items() if not v]
    grade.record(100.0 * passed / len(checks), details={"checks": checks, "notes": notes},
                 message=(f"{passed}/{len(checks)} shutdown checks pass" +
                          (f"; failing: {'; '.join(failing)}" if failing else "") +
                          (f" ({'; '.join(notes)})" if notes else "")))
