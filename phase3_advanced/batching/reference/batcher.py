# REFERENCE SOLUTION: excluded from the learner release (make release).
"""Tasks 3.1 and 3.2: a dynamic batcher, and what keeps it standing under bad input and overload.

Guide: DYNAMIC_BATCHING_GUIDE.md#task-31-a-dynamic-batcher and #task-32-robustness
"""
from __future__ import annotations

import collections
import threading
import time
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass
from typing import Any, Callable

import torch

# BEGIN SOLUTION
from ..types import (BatcherClosed, BatcherConfig, BatcherStats, InvalidRequest, ModelError, Overloaded)
# END SOLUTION
""" # BEGIN PROMPT
from ..types import (BatcherClosed, BatcherConfig, BatcherStats, InvalidRequest, ModelError,  # noqa: F401
                    Overloaded)
"""  # END PROMPT

__all__ = ["DynamicBatcher", "check_request"]


# ---------------------------------------------------------------------------------------------------
# Helpers (written in full): one queued request, settling a future exactly once, thread-safe counters
# ---------------------------------------------------------------------------------------------------
@dataclass
class _Request:
    """One accepted request: its input ``x`` (shape ``input_shape``), the future its client holds,
    and when it was queued (``time.perf_counter_ns()``), which starts its ``max_queue_delay`` clock."""

    x: torch.Tensor
    future: Future
    enqueued_ns: int


def _resolve(future: Future, value: Any) -> bool:
    """Set ``value`` as the future's result unless it is already settled (cancelled); True if set."""
    try:
        future.set_result(value)
        return True
    except InvalidStateError:
        return False


def _fail(future: Future, error: BaseException) -> bool:
    """Set ``error`` on the future unless it is already settled (cancelled); True if set."""
    try:
        future.set_exception(error)
        return True
    except InvalidStateError:
        return False


class _Counters:
    """The numbers behind ``BatcherStats``; every method is thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.values = {"submitted": 0, "rejected": 0, "completed": 0, "failed": 0, "batches": 0}
        self.batch_sizes: dict[int, int] = {}

    def add(self, **counts: int) -> None:
        """``add(completed=8, batches=1)``: increase the named counters."""
        with self._lock:
            for key, n in counts.items():
                self.values[key] += n

    def batch(self, size: int) -> None:
        """Record one model call of ``size`` requests (``batches`` and the histogram)."""
        with self._lock:
            self.values["batches"] += 1
            self.batch_sizes[size] = self.batch_sizes.get(size, 0) + 1

    def snapshot(self, queue_depth: int) -> BatcherStats:
        with self._lock:
            return BatcherStats(**self.values, queue_depth=queue_depth, batch_sizes=dict(self.batch_sizes))


# ---------------------------------------------------------------------------------------------------
# ## Task 3.2: robustness (1/2): refuse a bad request before it can poison a batch
# ---------------------------------------------------------------------------------------------------
def check_request(x: Any, *, input_shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """Return ``x`` if it is one valid request for a model, else raise ``InvalidRequest``.

    Args:
        x: what a client passed to ``submit``: should be a ``torch.Tensor`` of exactly
            ``input_shape`` (one sample, NO batch dimension) and dtype ``dtype``.
        input_shape: the model's per-request input shape, e.g. ``(1, 32, 32)``.
        dtype: the model's input dtype, e.g. ``torch.float32``.

    Returns:
        ``x`` itself (a tensor of shape ``input_shape`` and dtype ``dtype``).

    Raises:
        InvalidRequest: ``x`` is not a tensor (message names its type), or its dtype differs (message
            contains "dtype" and both dtypes), or its shape differs (message contains "shape" and both
            shapes). Never converts: a float64 input is refused, not cast.

    Tolerance the grader applies (p3.batching.bad_requests): every malformed request (wrong shape, a batch
    dimension, wrong dtype, not a tensor) is refused with ``InvalidRequest`` and the right word in
    its message, while the valid requests sent around it all get their own correct output.

    Guide: DYNAMIC_BATCHING_GUIDE.md#task-32-robustness
    """
    # BEGIN SOLUTION
    if not isinstance(x, torch.Tensor):
        raise InvalidRequest(f"expected a torch.Tensor of shape {tuple(input_shape)} and dtype {dtype}, "
                             f"got {type(x).__name__}")
    if x.dtype != dtype:
        raise InvalidRequest(f"input dtype {x.dtype} does not match the model's dtype {dtype}")
    if tuple(x.shape) != tuple(input_shape):
        extra = " (submit one sample, without a batch dimension)" if x.dim() == len(input_shape) + 1 else ""
        raise InvalidRequest(f"input shape {tuple(x.shape)} does not match the model's input shape "
                             f"{tuple(input_shape)}{extra}")
    return x
    # END SOLUTION
    """ # BEGIN PROMPT
    # Step 1: not a torch.Tensor -> raise InvalidRequest(...) naming type(x).__name__.
    # Step 2: x.dtype != dtype -> InvalidRequest whose message says "dtype" and gives both dtypes (never cast).
    # Step 3: tuple(x.shape) != tuple(input_shape) -> InvalidRequest whose message says "shape" and gives both
    #   shapes. A leading batch dimension of 1 is still the wrong shape: one request is one sample.
    # Step 4: return x.
    raise NotImplementedError("Task 3.2: see DYNAMIC_BATCHING_GUIDE.md#task-32-robustness")
    """  # END PROMPT


class DynamicBatcher:
    """Collects requests from many threads into batches and runs the model once per batch.

    Usage::

        config = BatcherConfig(max_batch_size=16, max_queue_delay_ms=5, max_queue_size=256)
        with DynamicBatcher(model_fn, config, input_shape=(3, 64, 64)) as batcher:
            future = batcher.submit(x)          # x: [3, 64, 64]; returns at once
            y = future.result(timeout=10)       # y: row of model_fn(batch) for x

    One worker thread (``start``) loops ``batch = _next_batch(); _run_batch(batch)`` until
    ``close`` is called. ``submit`` may be called from any number of threads.
    """

    def __init__(self, model_fn: Callable[[torch.Tensor], torch.Tensor], config: BatcherConfig, *,
                 input_shape: tuple[int, ...], dtype: torch.dtype = torch.float32, name: str = "model",
                 stream: Any = None) -> None:
        """Set up the queue and counters (helper, written in full). Nothing runs until ``start()``.

        Args:
            model_fn: ``[B, *input_shape] -> [B, ...]``; called only from the worker thread.
            config: the batching settings (``BatcherConfig``).
            input_shape: one request's input shape, without the batch dimension.
            dtype: every request's input dtype.
            name: for thread names and messages.
            stream: a ``torch.cuda.Stream`` to run the model on (None: the current stream / CPU).

        Raises:
            TypeError: ``config`` is not a ``BatcherConfig``.
        """
        if not isinstance(config, BatcherConfig):
            raise TypeError(f"config must be a BatcherConfig, got {type(config).__name__}")
        self.model_fn = model_fn
        self.config = config
        self.input_shape = tuple(int(d) for d in input_shape)
        self.dtype = dtype
        self.name = name
        self.stream = stream
        self._queue: collections.deque[_Request] = collections.deque()   # waiting requests, oldest first
        self._cond = threading.Condition()     # guards _queue, _accepting, _closing
        self._accepting = False                # True between start() and close(): submit() queues
        self._closing = False                  # close() was called: _next_batch sends what waits at once
        self._worker: threading.Thread | None = None
        self._worker_error: BaseException | None = None
        self._counters = _Counters()

    # -- lifecycle helpers (written in full) --------------------------------------------------------
    def start(self) -> "DynamicBatcher":
        """Start the worker thread (a daemon, so a forgotten batcher never blocks interpreter exit).

        Raises:
            RuntimeError: the batcher was already started (a closed batcher cannot be restarted).
        """
        with self._cond:
            if self._worker is not None:
                raise RuntimeError(f"batcher {self.name!r} was already started")
            self._accepting = True
            self._worker = threading.Thread(target=self._worker_loop, name=f"batcher-{self.name}", daemon=True)
        self._worker.start()
        return self

    def __enter__(self) -> "DynamicBatcher":
        return self.start() if self._worker is None else self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def stats(self) -> BatcherStats:
        """Counters since ``start()`` and the current queue depth."""
        with self._cond:
            depth = len(self._queue)
        return self._counters.snapshot(depth)

    def _call_model(self, batch: torch.Tensor) -> Any:
        """``model_fn(batch)``, on this batcher's CUDA stream when it has one (waits for the stream)."""
        if self.stream is None:
            return self.model_fn(batch)
        with torch.cuda.stream(self.stream):
            out = self.model_fn(batch)
        self.stream.synchronize()
        return out

    def _worker_loop(self) -> None:
        """The worker thread: ``_run_batch(_next_batch())`` until ``_next_batch`` returns None.

        An exception escaping ``_next_batch`` or ``_run_batch`` is a bug in the batcher: the worker
        keeps it in ``_worker_error``, stops accepting, fails the batch in hand and every queued
        request with it (so no client waits forever), and exits.
        """
        batch: list[_Request] = []
        try:
            while True:
                batch = []
                got = self._next_batch()
                if got is None:
                    return
                batch = list(got)
                self._run_batch(batch)
        except BaseException as e:  # noqa: BLE001 - reported on every stranded future
            self._worker_error = e
            with self._cond:
                self._accepting = False
                stranded = batch + list(self._queue)
                self._queue.clear()
            self._counters.add(failed=sum(_fail(r.future, e) for r in stranded))

    # -----------------------------------------------------------------------------------------------
    # ## Task 3.1: a dynamic batcher
    # -----------------------------------------------------------------------------------------------
    def submit(self, x: torch.Tensor) -> Future:
        """Queue one request and return a future for its output, at once (never waits for the model).

        Args:
            x: one request's input, shape ``input_shape`` (no batch dimension), dtype ``dtype``.

        Returns:
            A ``concurrent.futures.Future`` that resolves to this request's output row, shape
            ``model_fn(batch).shape[1:]``, or to an exception (``ModelError``, ``BatcherClosed``).

        Raises:
            InvalidRequest: ``x`` fails ``check_request`` (Task 3.2); nothing is queued.
            BatcherClosed: the batcher is not running (before ``start()`` or after ``close()``).
            Overloaded: ``max_queue_size`` requests are already waiting (Task 3.2).

        Tolerance the grader applies: p3.batching.correct_under_load, every one of 2,000+ concurrent requests
        gets its own output (max |difference| <= 1e-4 from the model run on that input alone), none
        lost or duplicated; p3.batching.speedup, throughput over the grader's one-request-per-call
        server at concurrency 2 x max_batch_size, as a share of what the model itself gains from
        batch 1 to max_batch_size (CPU: >= 65 %, full marks 85 %); p3.batching.backpressure, a
        full queue refuses at once (p99 of submit() under overload <= 5 ms, full marks 1 ms).

        Guide: DYNAMIC_BATCHING_GUIDE.md#task-31-a-dynamic-batcher
        """
        # BEGIN SOLUTION
        # Step 1 (Task 3.2): refuse a malformed input before it is queued.
        try:
            x = check_request(x, input_shape=self.input_shape, dtype=self.dtype)
        except InvalidRequest:
            self._counters.add(rejected=1)
            raise
        request = _Request(x=x, future=Future(), enqueued_ns=time.perf_counter_ns())   # Step 2
        # Step 3: under the lock: closed? full? else append and wake the worker.
        with self._cond:
            if not self._accepting:
                self._counters.add(rejected=1)
                why = "was closed" if self._closing else "is not running (call start() or use `with`)"
                raise BatcherClosed(f"batcher {self.name!r} {why}")
            if len(self._queue) >= self.config.max_queue_size:
                self._counters.add(rejected=1)
                raise Overloaded(f"batcher {self.name!r} is overloaded: {len(self._queue)} requests waiting "
                                 f"(max_queue_size={self.config.max_queue_size}); retry later")
            self._queue.append(request)
            self._counters.add(submitted=1)
            self._cond.notify()
        return request.future                    # Step 4: at once
        # END SOLUTION
        """ # BEGIN PROMPT
        # Step 1 (Task 3.2, skip it until then): x = check_request(x, input_shape=self.input_shape, dtype=self.dtype);
        #   on InvalidRequest: self._counters.add(rejected=1) and re-raise.
        # Step 2: request = _Request(x=x, future=Future(), enqueued_ns=time.perf_counter_ns()).
        # Step 3: with self._cond: if not self._accepting: count a rejection, raise BatcherClosed(...).
        #   (Task 3.2) if len(self._queue) >= self.config.max_queue_size: count a rejection, raise Overloaded(...)
        #   saying how many wait and the limit. Else append, self._counters.add(submitted=1) and
        #   self._cond.notify() to wake the worker.
        # Step 4: return request.future. Never wait for the model in here: submit must return at once.
        raise NotImplementedError("Task 3.1: see DYNAMIC_BATCHING_GUIDE.md#task-31-a-dynamic-batcher")
        """  # END PROMPT

    def _next_batch(self) -> list[_Request] | None:
        """Block until a batch is due; take it from the queue (worker thread only).

        A batch is due when ``max_batch_size`` requests wait (or the largest preferred batch size),
        or when the OLDEST waiting request has waited ``max_queue_delay_ms`` since it was queued, or
        when ``close`` was called (what waits goes at once; with ``drain=False`` close has already
        emptied the queue).

        Returns:
            1..max_batch_size requests, oldest first, without the ones their clients cancelled. With
            preferred sizes configured: the largest preferred size not above the number waiting, or
            (none fits, so the delay expired) everything waiting. None when the batcher is closing
            and the queue is empty: the worker then exits.

        Tolerance the grader applies (p3.batching.latency_bound): p99 latency under load, closed loop and
        Poisson arrivals, within max_queue_delay + one max-size batch's compute + a slack of
        2 x that compute + 20 ms (pass at 100% of that bound, full marks at 60%). The delay counts
        from the oldest request's arrival, not from the last one's.

        Guide: DYNAMIC_BATCHING_GUIDE.md#task-31-a-dynamic-batcher
        """
        # BEGIN SOLUTION
        cfg = self.config
        target = max(cfg.preferred_batch_sizes) if cfg.preferred_batch_sizes else cfg.max_batch_size
        while True:
            with self._cond:
                # Step 1: sleep until there is work, or until close() says stop.
                while not self._queue and not self._closing:
                    self._cond.wait()
                if not self._queue:
                    return None
                # Step 2: wait for more requests until the oldest one's deadline.
                deadline = self._queue[0].enqueued_ns + int(cfg.max_queue_delay_ms * 1e6)
                while len(self._queue) < target and not self._closing:
                    remaining = (deadline - time.perf_counter_ns()) / 1e9
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                # Step 3: how many to take: up to max_batch_size; the largest preferred size that fits, if any.
                n = min(len(self._queue), cfg.max_batch_size)
                n = max([p for p in cfg.preferred_batch_sizes if p <= n] or [n])
                taken = [self._queue.popleft() for _ in range(n)]
            # Step 4: skip requests their clients cancelled (this also marks the rest as running).
            batch = [r for r in taken if r.future.set_running_or_notify_cancel()]
            if len(batch) < len(taken):
                self._counters.add(failed=len(taken) - len(batch))
            if batch:
                return batch
        # END SOLUTION
        """ # BEGIN PROMPT
        # Step 1: with self._cond: self._cond.wait() while the queue is empty and not self._closing. Still empty
        #   after that means close() was called and nothing is left: return None (the worker exits).
        # Step 2: deadline = self._queue[0].enqueued_ns + max_queue_delay in ns (the OLDEST request's clock).
        #   target = max(preferred_batch_sizes) if any, else max_batch_size. While len(queue) < target and not
        #   self._closing: remaining = (deadline - time.perf_counter_ns()) / 1e9; stop if remaining <= 0, else
        #   self._cond.wait(remaining). wait() also wakes on every submit's notify(): re-check each time.
        # Step 3: n = min(len(queue), max_batch_size); with preferred sizes, the largest preferred size <= n
        #   (if there is one). Pop n requests from the left (oldest first).
        # Step 4: outside the lock, keep the requests whose r.future.set_running_or_notify_cancel() is True
        #   (their clients did not cancel; count the others as failed). Return them, or start again if none is left.
        raise NotImplementedError("Task 3.1: see DYNAMIC_BATCHING_GUIDE.md#task-31-a-dynamic-batcher")
        """  # END PROMPT

    def _run_batch(self, batch: list[_Request]) -> None:
        """Stack the batch, call the model once, give each request its own row (worker thread only).

        Args:
            batch: 1..max_batch_size requests from ``_next_batch``, in queue order.

        Effects:
            Every future in ``batch`` is settled before this returns: with row i of
            ``model_fn(torch.stack([r.x for r in batch]))`` for request i, or (Task 3.2) with a
            ``ModelError`` whose ``__cause__`` is the model's exception, when the model raises or
            returns something without exactly ``len(batch)`` rows. Never raises: one bad batch must
            not kill the worker. Counters: ``batch(len)`` once per model call, ``completed`` /
            ``failed`` per request. Before Task 3.2 (no ``try`` yet) a wrong row count raises a ``ValueError``
            naming both counts: the given ``_worker_loop`` fails every request it holds and stops the batcher.

        Tolerance the grader applies (p3.batching.correct_under_load, p3.batching.bad_requests): outputs in the right
        order (max |difference| <= 1e-4 from the model on that input alone); a model exception fails
        that batch's requests, and the next requests are served.

        Guide: DYNAMIC_BATCHING_GUIDE.md#task-31-a-dynamic-batcher
        """
        # BEGIN SOLUTION
        try:   # Step 4 (Task 3.2): around the model call and the output check (the stack cannot fail here)
            # Step 1: one tensor [B, *input_shape], one model call.
            inputs = torch.stack([r.x for r in batch])           # [B, *input_shape]
            self._counters.batch(len(batch))
            outputs = self._call_model(inputs)                     # [B, ...]
            # Step 2: exactly one row per request, or a ValueError naming both counts.
            if not isinstance(outputs, torch.Tensor) or outputs.dim() == 0 or outputs.shape[0] != len(batch):
                got = tuple(outputs.shape) if isinstance(outputs, torch.Tensor) else type(outputs).__name__
                raise ValueError(f"model returned {got} for a batch of {len(batch)}; expected {len(batch)} rows")
        except Exception as e:  # noqa: BLE001 - Step 4 (Task 3.2): fail this batch, keep the batcher
            error = ModelError(f"model {self.name!r} failed on a batch of {len(batch)}: {type(e).__name__}: {e}")
            error.__cause__ = e
            self._counters.add(failed=sum(_fail(r.future, error) for r in batch))
            return
        # Step 3: split in order; each client gets its own row.
        done = sum(_resolve(r.future, row) for r, row in zip(batch, outputs.unbind(0)))
        self._counters.add(completed=done, failed=len(batch) - done)
        # END SOLUTION
        """ # BEGIN PROMPT
        # Step 1: inputs = torch.stack([r.x for r in batch])   # [B, *input_shape]; self._counters.batch(len(batch));
        #   outputs = self._call_model(inputs)   # [B, ...] (not self.model_fn: _call_model handles CUDA streams).
        # Step 2: outputs must be a tensor with outputs.shape[0] == len(batch); if not, raise ValueError naming
        #   both counts. Until Task 3.2 only the given _worker_loop catches it: it fails this batch and every queued
        #   request with it, and the batcher stops. Task 3.2 (Step 4) makes it a ModelError for this batch alone.
        # Step 3: request i gets row i: _resolve(r.future, row) for r, row in zip(batch, outputs.unbind(0));
        #   self._counters.add(completed=...).
        # Step 4 (Task 3.2): wrap the model call and the output check (Steps 1-2; the torch.stack may stay inside:
        #   after check_request in submit it cannot fail) in try / except Exception as e:
        #   error = ModelError(f"... {e}"); error.__cause__ = e; _fail(r.future, error) for every request in the
        #   batch; count them failed; return. This method must never raise: that would kill the worker thread.
        raise NotImplementedError("Task 3.1: see DYNAMIC_BATCHING_GUIDE.md#task-31-a-dynamic-batcher")
        """  # END PROMPT

    # -----------------------------------------------------------------------------------------------
    # ## Task 3.2: robustness (2/2): a shutdown that leaves no request hanging
    # -----------------------------------------------------------------------------------------------
    def close(self, *, drain: bool = True, timeout_s: float = 10.0) -> None:
        """Stop accepting requests, finish or fail the queued ones, and stop the worker thread.

        Args:
            drain: True: requests already queued still run (in batches, as usual) before the worker
                exits. False: queued requests are failed at once with ``BatcherClosed``; a batch
                already inside the model finishes.
            timeout_s: longest wait for the worker thread to exit (seconds). If it is still busy
                after that (a model call that never returns), the requests still queued are failed
                with ``BatcherClosed`` and ``close`` returns anyway.

        Returns:
            None, once the worker thread has exited (or ``timeout_s`` passed). Calling ``close`` again,
            or on a batcher never started, is harmless. Afterwards ``submit`` raises ``BatcherClosed``.

        Tolerance the grader applies (p3.batching.clean_shutdown): after close(drain=True) every queued request
        has its correct output; after close(drain=False) close returns within 0.5 s and every request
        is settled (a result or an exception) within 1 s; submit afterwards raises BatcherClosed;
        no thread is left running (threading.active_count() back to where it was).

        Guide: DYNAMIC_BATCHING_GUIDE.md#task-32-robustness
        """
        # BEGIN SOLUTION
        # Step 1: under the lock: stop accepting, tell the worker, take the queue if not draining.
        with self._cond:
            self._accepting = False
            self._closing = True
            dropped = [] if drain else [self._queue.popleft() for _ in range(len(self._queue))]
            self._cond.notify_all()
        # Step 2: fail what was dropped, outside the lock (futures run callbacks when settled).
        error = BatcherClosed(f"batcher {self.name!r} was closed before this request ran")
        self._counters.add(failed=sum(_fail(r.future, error) for r in dropped))
        # Step 3: wait for the worker; if there is none, or it is stuck, fail whatever is still queued.
        worker = self._worker
        if worker is not None and worker is not threading.current_thread():
            worker.join(timeout_s)
        if worker is None or worker.is_alive():
            with self._cond:
                stranded = list(self._queue)
                self._queue.clear()
            self._counters.add(failed=sum(_fail(r.future, error) for r in stranded))
        # END SOLUTION
        """ # BEGIN PROMPT
        # Step 1: with self._cond: self._accepting = False; self._closing = True; if not drain, take every queued
        #   request out (dropped = list(self._queue); self._queue.clear()); self._cond.notify_all() (the worker may be
        #   waiting for requests or for its deadline). The worker reads only _closing: its _next_batch then sends what
        #   is queued at once, without waiting for the delay, and returns None once the queue is empty.
        # Step 2: outside the lock, _fail each dropped request with BatcherClosed(...); count them failed.
        # Step 3: join the worker (self._worker) with timeout_s, unless it is None (never started) or the current
        #   thread (close() called from the worker, e.g. in a future's callback, would wait for itself). If there is
        #   no worker, or it is still alive after the join (a model call that never returns), fail whatever is still
        #   queued with BatcherClosed, and return anyway.
        raise NotImplementedError("Task 3.2: see DYNAMIC_BATCHING_GUIDE.md#task-32-robustness")
        """  # END PROMPT
