"""The grader's own load generator: the load that decides a grade is generated and timed here.

Serving criteria (Phase 3 onwards) grade a system under concurrent load, so the load itself must be
trusted: it is never the learner's load generator. Two shapes, as in Triton's perf_analyzer and
MLPerf LoadGen:

* :func:`closed_loop`  ``concurrency`` client threads, each sending its next request when the last
  one is answered (perf_analyzer's concurrency mode);
* :func:`poisson`      one sender thread on a seeded exponential schedule that never waits for
  answers (LoadGen's Server scenario); latency counts from the *scheduled* arrival, so a server that
  blocks the sender cannot hide its queue (no coordinated omission).

Each request index carries its own input, and :class:`LoadRun` keeps, per index, the output, the
exception, the latency and how long ``submit`` itself took, so a criterion can check that every
request got exactly its own answer. Waiting never hangs a grader: client threads are daemons, every
wait has a timeout, and a request with no answer in time is recorded as a ``TimeoutError``. (A
``submit`` that never returns blocks the Poisson sender; the criterion's time limit ends that.)

:class:`UnbatchedServer` is the baseline that batching is compared with: the same worker-thread
structure as a batcher, one request per model call.
"""
from __future__ import annotations

import collections
import math
import threading
import time
from concurrent.futures import Future, InvalidStateError
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from .stats import Summary, summarize
from .timing import now_ns

__all__ = ["LoadRun", "closed_loop", "poisson", "UnbatchedServer", "max_overlap", "poisson_gap_problem"]


@dataclass
class LoadRun:
    """One load test as the grader saw it; every list is indexed by request.

    ``latency_ms[i]`` is NaN unless request i completed; ``errors[i]`` is what ``submit`` raised or
    the future raised (a ``TimeoutError`` when no answer came in time); ``submit_ms[i]`` is how long
    the ``submit`` call itself took (NaN if it never returned).
    """

    mode: str
    n: int
    outputs: list[Any]
    errors: list[BaseException | None]
    latency_ms: list[float]
    submit_ms: list[float]
    start_ns: int
    end_ns: int
    concurrency: int | None = None
    rate_per_s: float | None = None
    lag_ms: list[float] = field(default_factory=list)   # poisson: how late each send left

    @property
    def completed(self) -> int:
        return sum(1 for v in self.latency_ms if not math.isnan(v))

    @property
    def failed(self) -> int:
        return self.n - self.completed

    @property
    def duration_s(self) -> float:
        return max(1e-9, (self.end_ns - self.start_ns) / 1e9)

    @property
    def throughput(self) -> float:
        """Answers per second over the whole run."""
        return self.completed / self.duration_s

    def latency(self) -> Summary:
        """Statistics of the completed requests' latencies (ms)."""
        return summarize([v for v in self.latency_ms if not math.isnan(v)] or [float("nan")])

    def error_kinds(self) -> dict[str, int]:
        """Exception class name -> count, over the failed requests."""
        out: dict[str, int] = {}
        for e in self.errors:
            if e is not None:
                out[type(e).__name__] = out.get(type(e).__name__, 0) + 1
        return out


def _as_future(obj: Any) -> Future:
    if not isinstance(obj, Future):
        raise TypeError(f"submit() must return a concurrent.futures.Future, got {type(obj).__name__}")
    return obj


def closed_loop(submit: Callable[[Any], Any], inputs: Sequence[Any], *, concurrency: int,
                result_timeout_s: float = 10.0, total_timeout_s: float = 120.0) -> LoadRun:
    """Send ``inputs`` through ``submit`` with ``concurrency`` requests in flight.

    Client threads take the next index, call ``submit(inputs[i])`` and wait for the future's result.
    Returns after every request is answered, failed or timed out, or after ``total_timeout_s`` (the
    requests not finished by then are recorded as timed out; their daemon threads are abandoned).
    """
    n = len(inputs)
    run = LoadRun("closed_loop", n, [None] * n, [None] * n, [math.nan] * n, [math.nan] * n, 0, 0,
                  concurrency=concurrency)
    lock = threading.Lock()
    order = iter(range(n))
    started = [False] * n

    def client() -> None:
        while True:
            with lock:
                i = next(order, None)
                if i is not None:
                    started[i] = True
            if i is None:
                return
            t0 = now_ns()
            try:
                fut = _as_future(submit(inputs[i]))
                run.submit_ms[i] = (now_ns() - t0) / 1e6
                y = fut.result(timeout=result_timeout_s)
            except FutureTimeout:
                run.errors[i] = TimeoutError(f"no answer within {result_timeout_s:g} s")
            except BaseException as e:  # noqa: BLE001 - the learner's error, recorded per request
                if math.isnan(run.submit_ms[i]):
                    run.submit_ms[i] = (now_ns() - t0) / 1e6
                run.errors[i] = e
            else:
                run.latency_ms[i] = (now_ns() - t0) / 1e6
                run.outputs[i] = y

    threads = [threading.Thread(target=client, name=f"grader-client-{k}", daemon=True)
               for k in range(max(1, min(concurrency, n)))]
    run.start_ns = now_ns()
    for t in threads:
        t.start()
    deadline = run.start_ns + int(total_timeout_s * 1e9)
    for t in threads:
        t.join(max(0.0, (deadline - now_ns()) / 1e9))
    run.end_ns = now_ns()
    with lock:
        for i in range(n):
            if run.errors[i] is None and math.isnan(run.latency_ms[i]):
                why = "submit() never returned" if started[i] and math.isnan(run.submit_ms[i]) else "not answered"
                run.errors[i] = TimeoutError(f"{why} within the run's {total_timeout_s:g} s limit")
    return run


#: Exponential gaps have a coefficient of variation (std / mean) of 1; see :func:`poisson_gap_problem`.
GAP_CV_RANGE = (0.75, 1.25)


def poisson_gap_problem(gaps_s: Sequence[float]) -> str | None:
    """Whether gaps between arrivals (s, at least 2) look exponential; ``None`` when they do, else why not.

    The coefficient of variation (std / mean) must lie in ``GAP_CV_RANGE``: exponential gaps have 1.0
    (sampling spread about +-0.07 with 450 gaps), evenly spaced ones 0, uniform ones 0.58, gamma(2)
    ones 0.71, requests sent in bursts of five about 2. A machine that stalls the sender also raises
    it (one long gap, then the late sends back to back: three 40 ms stalls in 1.5 s at 300 req/s take
    exponential gaps to about 1.5), so a caller that sees a problem must ask :func:`watch_stalls`
    whether the machine stalled before calling it the sender's.
    """
    g = np.asarray(gaps_s, dtype=np.float64)
    if g.size < 2 or not np.isfinite(g).all() or g.mean() <= 0:
        return f"{g.size} gaps between arrivals are too few (or not finite) to judge their shape"
    cv = float(g.std() / g.mean())
    lo, hi = GAP_CV_RANGE
    if cv < lo:
        return (f"the gaps between arrivals are too regular: coefficient of variation {cv:.2f} (exponential gaps, "
                f"Poisson arrivals, have 1.0; evenly spaced ones 0; allowed {lo}-{hi})")
    if cv > hi:
        return (f"the arrivals come in bursts: the gaps between them have a coefficient of variation of {cv:.2f} "
                f"(exponential gaps, Poisson arrivals, have 1.0; allowed {lo}-{hi})")
    return None


def poisson(submit: Callable[[Any], Any], inputs: Sequence[Any], *, rate_per_s: float, seed: int,
            result_timeout_s: float = 10.0) -> LoadRun:
    """Send ``inputs`` at seeded exponential gaps (mean ``1 / rate_per_s``), never waiting for answers.

    Latency of request i = its answer time minus its *scheduled* send time. ``lag_ms`` says how late
    each send actually left (the sender's own delay, or a ``submit`` that blocked).
    """
    n = len(inputs)
    gaps = np.random.default_rng(seed).exponential(1.0 / rate_per_s, size=n)
    offsets_ns = (np.cumsum(gaps) * 1e9).astype(np.int64)
    run = LoadRun("poisson", n, [None] * n, [None] * n, [math.nan] * n, [math.nan] * n, 0, 0,
                  rate_per_s=rate_per_s, lag_ms=[math.nan] * n)
    done_ns = [0] * n
    futures: list[Future | None] = [None] * n
    finished = threading.Semaphore(0)

    def on_done(i: int) -> Callable[[Future], None]:
        def cb(_: Future) -> None:
            done_ns[i] = now_ns()
            finished.release()
        return cb

    run.start_ns = now_ns()
    for i in range(n):
        due = run.start_ns + int(offsets_ns[i])
        wait = (due - now_ns()) / 1e9
        if wait > 0:
            time.sleep(wait)
        t0 = now_ns()
        run.lag_ms[i] = (t0 - due) / 1e6
        try:
            fut = _as_future(submit(inputs[i]))
        except BaseException as e:  # noqa: BLE001
            run.submit_ms[i] = (now_ns() - t0) / 1e6
            run.errors[i] = e
            finished.release()
            continue
        run.submit_ms[i] = (now_ns() - t0) / 1e6
        futures[i] = fut
        fut.add_done_callback(on_done(i))
    deadline = now_ns() + int(result_timeout_s * 1e9)
    for _ in range(n):
        if not finished.acquire(timeout=max(0.0, (deadline - now_ns()) / 1e9)):
            break
    for i, fut in enumerate(futures):
        if fut is None:
            continue
        if not fut.done():
            run.errors[i] = TimeoutError(f"no answer within {result_timeout_s:g} s of the last send")
            continue
        try:
            run.outputs[i] = fut.result(timeout=0)
        except BaseException as e:  # noqa: BLE001
            run.errors[i] = e
            continue
        run.latency_ms[i] = (done_ns[i] - (run.start_ns + int(offsets_ns[i]))) / 1e6
    run.end_ns = max([d for d in done_ns if d] or [now_ns()])
    return run


class UnbatchedServer:
    """The baseline: one worker thread, one request per model call (``model_fn(x[None])[0]``).

    The same structure as a dynamic batcher (a locked queue, a worker, futures), so the measured
    difference is batching itself. ``submit`` never refuses.
    """

    def __init__(self, model_fn: Callable[[Any], Any]):
        self.model_fn = model_fn
        self._queue: collections.deque = collections.deque()
        self._cond = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._loop, name="grader-unbatched", daemon=True)

    def start(self) -> "UnbatchedServer":
        self._thread.start()
        return self

    def submit(self, x: Any) -> Future:
        fut: Future = Future()
        with self._cond:
            self._queue.append((x, fut))
            self._cond.notify()
        return fut

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stop:
                    self._cond.wait()
                if not self._queue:
                    return
                x, fut = self._queue.popleft()
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                y = self.model_fn(x.unsqueeze(0))[0]
            except BaseException as e:  # noqa: BLE001
                fut.set_exception(e)
            else:
                try:
                    fut.set_result(y)
                except InvalidStateError:
                    pass

    def close(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        self._thread.join(10.0)


def max_overlap(intervals: Sequence[tuple[str, int, int]]) -> tuple[int, float]:
    """Most distinct names active at one moment, and the share of the busy time with 2 or more.

    ``intervals`` are ``(name, start_ns, end_ns)``, for example model calls logged by instrumented
    models. Returns ``(peak distinct names, fraction of the union of intervals covered by >= 2 names)``.
    """
    events = sorted([(s, 1, name) for name, s, e in intervals] + [(e, -1, name) for name, s, e in intervals],
                    key=lambda t: (t[0], t[1]))
    active: dict[str, int] = {}
    peak, last, busy, shared = 0, None, 0, 0
    for t, kind, name in events:
        if last is not None and active:
            busy += t - last
            if len(active) >= 2:
                shared += t - last
        if kind == 1:
            active[name] = active.get(name, 0) + 1
        else:
            active[name] -= 1
            if active[name] == 0:
                del active[name]
        peak = max(peak, len(active))
        last = t
    return peak, (shared / busy if busy else 0.0)
