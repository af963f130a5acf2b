# REFERENCE SOLUTION: excluded from the learner release (make release).
"""Task 4.14 (1 of 2): a model's worker processes, fed by a dynamic batcher, supervised, drained.

Task 4.12's server runs the model on the front end's thread pool: one process, one session, one request per run.
Here each model version gets a :class:`WorkerPool`: ``instance_group { count: N }`` worker processes
(``workers.py``, written in full), fed by Triton's dynamic batcher as ``config.pbtxt`` configures it::

    HTTP front end (app.py, event loop)
       -> ScaledServer.submit_infer    checks the request, gives it a deadline, returns a Future at once
       -> WorkerPool.submit            queues it (503 when closing)
       -> WorkerPool.next_batch        one per worker thread: the oldest requests, up to max_batch_size rows,
                                       waiting at most max_queue_delay for a preferred size; expired ones get 504
       -> WorkerPool.run_batch         runs the batch in that thread's worker process, splits the answer by rows;
                                       if the process died: its requests go back to the queue once, the worker
                                       is restarted (the supervisor)
       -> the Future resolves          app.py awaits it without holding a thread

``close(drain=True)`` stops taking requests, finishes every queued one, then stops the workers: a rolling
restart or a scale-down loses nothing.

Guide: SERVER_DEPLOYMENT_GUIDE.md#task-414-scale-on-one-machine
"""
from __future__ import annotations

import collections
import concurrent.futures
import logging
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..model_config import instance_devices
from ..protocol import ProtocolError
from ..workers import Worker, WorkerDied, WorkerFailed
from .repository import ServedModel

__all__ = ["BatchingPolicy", "Pending", "WorkerPool", "batching_policy", "instance_count", "instance_devices", "then"]

log = logging.getLogger("inference_lab.server")
#: How many times a request is run when its worker dies under it (the first try + one retry).
MAX_ATTEMPTS = 2


@dataclass(frozen=True)
class BatchingPolicy:
    """What ``config.pbtxt`` says about batching (helper, written in full).

    Attributes:
        max_batch_size: rows per batch at most (1 when the model does not batch: each request runs alone).
        preferred: ``preferred_batch_size`` ascending (empty: only ``max_batch_size`` is preferred).
        max_queue_delay_s: how long the oldest request may wait for a batch to fill, seconds (0: never wait).
        batching: ``dynamic_batching`` is set and ``max_batch_size > 0``.
    """

    max_batch_size: int
    preferred: tuple[int, ...]
    max_queue_delay_s: float
    batching: bool


def batching_policy(config: Any) -> BatchingPolicy:
    """The :class:`BatchingPolicy` of a ``model_config_pb2.ModelConfig`` (helper, written in full)."""
    batching = config.max_batch_size > 0 and config.HasField("dynamic_batching")
    db = config.dynamic_batching
    return BatchingPolicy(max_batch_size=max(1, config.max_batch_size),
                          preferred=tuple(sorted(set(db.preferred_batch_size))) if batching else (),
                          max_queue_delay_s=db.max_queue_delay_microseconds / 1e6 if batching else 0.0,
                          batching=batching)


def instance_count(config: Any) -> int:
    """Worker processes for a model: one per entry of :func:`instance_devices` (the sum of the ``instance_group``
    counts, times the GPUs a ``KIND_GPU`` group lists), as Triton does (helper, written in full)."""
    return len(instance_devices(config))


def then(future: Future, fn: Callable[[Any], Any]) -> Future:
    """A Future of ``fn(future.result())``; an exception of ``future`` or of ``fn`` goes through (helper)."""
    out: Future = Future()

    def done(f: Future) -> None:
        try:
            out.set_result(fn(f.result()))
        except BaseException as e:  # noqa: BLE001 - handed to whoever awaits ``out``
            out.set_exception(e)
    future.add_done_callback(done)
    return out


@dataclass
class Pending:
    """One request waiting in a pool's queue (helper, written in full).

    Attributes:
        inputs: ``{input name: array [rows, ...]}``, checked.
        rows: the request's batch size (its first dimension; 1 for a model that does not batch).
        deadline: ``time.monotonic()`` by which it must be answered.
        future: resolves to ``{output name: array [rows, ...]}`` or a :class:`ProtocolError`.
        attempts: how many times it was handed to a worker.
    """

    inputs: dict[str, np.ndarray]
    rows: int
    deadline: float
    future: Future = field(default_factory=Future)
    attempts: int = 0
    queued_at: float = field(default_factory=time.monotonic)


def _settle(future: Future, *, result: Any = None, error: BaseException | None = None) -> None:
    """Resolve a future once; a second resolution (a retried request answered twice) is ignored."""
    try:
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)
    except concurrent.futures.InvalidStateError:
        pass


class WorkerPool:
    """The instances of one model version: worker processes fed by a dynamic batcher.

    Args:
        model: the loaded model version (its ``config`` and ``path``).
        count: worker processes (default: :func:`instance_count` of the config).
        threads: ONNX Runtime intra-op threads per worker.

    Helpers (written in full): ``start()``, ``stats()``, ``worker_pids()``, ``restart(slot)``, the per-worker
    thread ``_serve(slot)`` that loops ``next_batch`` -> ``run_batch``, and the module's ``_settle(future, result=
    or error=)`` that answers a request once (a second answer is ignored). Yours: :meth:`submit`, :meth:`next_batch`,
    :meth:`run_batch`, :meth:`close`.

    State (read and write it under ``self.cond``): ``queue`` (a deque of :class:`Pending`, oldest first),
    ``accepting`` (False once close() began), ``busy`` (batches being run now).
    """

    def __init__(self, model: ServedModel, *, count: int | None = None, threads: int = 1):
        self.model, self.threads = model, threads
        self.policy = batching_policy(model.config)
        self.count = count or instance_count(model.config)
        places = instance_devices(model.config)
        #: Where each worker runs (``"cpu"``, ``"cuda"``, ``"cuda:N"``), by slot.
        self.devices = [places[i % len(places)] for i in range(self.count)]
        self.cond = threading.Condition()
        self.queue: collections.deque[Pending] = collections.deque()
        self.accepting = False
        self.busy = 0
        self.workers: list[Worker | None] = [None] * self.count
        self.counts = collections.Counter()  # batches, rows, requeued, restarts, expired, failed
        self._threads: list[threading.Thread] = []
        #: Called after each executed batch as ``on_batch(rows=, queue_s=[...], compute_s=)`` (Task 4.15's
        #: ``ServerMetrics.record_batch``, bound to this model); None: nothing is reported.
        self.on_batch: Callable[..., None] | None = None

    # --- helpers (written in full) ------------------------------------------------------------------------------
    def _new_worker(self, slot: int) -> Worker:
        return Worker(self.model.path, list(self.model.output_names), self.threads, index=slot,
                      device=self.devices[slot], input_names=list(self.model.input_names)).start()

    def start(self) -> WorkerPool:
        """Spawn the workers (in parallel) and their threads; returns self."""
        with concurrent.futures.ThreadPoolExecutor(self.count) as ex:
            self.workers = list(ex.map(self._new_worker, range(self.count)))
        self.accepting = True
        for slot in range(self.count):
            t = threading.Thread(target=self._serve, args=(slot,), daemon=True,
                                 name=f"pool-{self.model.name}-{slot}")
            t.start()
            self._threads.append(t)
        return self

    def _serve(self, slot: int) -> None:
        """One worker's thread: take a batch, run it, until :meth:`next_batch` says the pool is closed."""
        while True:
            batch = self.next_batch()
            if batch is None:
                return
            with self.cond:
                self.busy += 1
            worker, start = self.workers[slot], time.monotonic()
            try:
                self.run_batch(slot, batch)
            except BaseException as e:  # noqa: BLE001 - a bug in run_batch must not strand its requests
                for p in batch:
                    _settle(p.future, error=e)
            finally:
                with self.cond:
                    self.busy -= 1
                    self.cond.notify_all()
            self._report(batch, worker is self.workers[slot], start, time.monotonic())

    def _report(self, batch: list[Pending], same_worker: bool, start: float, end: float) -> None:
        """Tell ``on_batch`` about a batch that ran: every request answered with outputs by this run (its worker
        was not replaced meanwhile: a requeued request is counted where it runs again)."""
        if self.on_batch is None or not same_worker:
            return
        if not all(p.future.done() and p.future.exception() is None for p in batch):
            return
        try:
            self.on_batch(rows=sum(p.rows for p in batch), queue_s=[start - p.queued_at for p in batch],
                          compute_s=end - start)
        except Exception:  # noqa: BLE001 - a metrics bug must not stop the worker's thread
            log.exception("on_batch failed for model %s", self.model.name)

    def restart(self, slot: int) -> Worker:
        """The supervisor's restart: replace the worker of ``slot`` by a fresh process (retrying every 0.5 s while
        the spawn fails), count it, and return it."""
        old = self.workers[slot]
        if old is not None:
            old.kill()
        while True:
            try:
                self.workers[slot] = self._new_worker(slot)
                break
            except (WorkerDied, TimeoutError, OSError):
                time.sleep(0.5)
        self.counts["restarts"] += 1
        return self.workers[slot]

    def worker_pids(self) -> list[int]:
        """The process ids of the live workers."""
        return [w.pid for w in self.workers if w is not None and w.alive]

    def stats(self) -> dict[str, int]:
        """``{"batches", "rows", "requeued", "restarts", "expired", "failed", "queued"}``."""
        with self.cond:
            return {**{k: self.counts[k] for k in ("batches", "rows", "requeued", "restarts", "expired", "failed")},
                    "queued": len(self.queue)}

    # -------------------------------------------------------------------------------------------------------------
    # ## Task 4.14: queue, batch, run, survive a dead worker, drain
    # -------------------------------------------------------------------------------------------------------------
    def submit(self, inputs: dict[str, np.ndarray], *, rows: int, deadline: float) -> Future:
        """Queue one checked request; returns its Future at once.

        Args:
            inputs: ``{input name: array [rows, ...]}``.
            rows: the request's batch size (``> max_batch_size`` cannot happen: check_inputs refused it).
            deadline: ``time.monotonic()`` by which it must be answered.

        Returns:
            A Future of ``{output name: array [rows, ...]}``.

        Raises:
            ProtocolError: 503 with ``retry_after_s=1`` once :meth:`close` began (the client tries again, maybe on
            another replica).

        Guide: SERVER_DEPLOYMENT_GUIDE.md#task-414-scale-on-one-machine
        """
        # BEGIN SOLUTION
        pending = Pending(inputs, rows, deadline)
        with self.cond:
            if not self.accepting:
                raise ProtocolError(503, f"model '{self.model.name}' is shutting down; retry", retry_after_s=1.0)
            self.queue.append(pending)
            self.cond.notify()
        return pending.future
        # END SOLUTION
        """ # BEGIN PROMPT
        # Make a Pending; under self.cond: refuse when not self.accepting, else append it and notify one waiter.
        raise NotImplementedError("Task 4.14: see SERVER_DEPLOYMENT_GUIDE.md#task-414-scale-on-one-machine")
        """  # END PROMPT

    def next_batch(self) -> list[Pending] | None:
        """The next batch for a worker: blocks until there is one; None when the pool is closed and empty.

        Triton's dynamic batcher, as ``self.policy`` says:

        - take requests oldest first while their rows fit in ``max_batch_size`` (a request is never split);
        - a request whose deadline has passed is not run: resolve its future with ``ProtocolError(504, ...)``,
          count it in ``self.counts["expired"]``, and move on;
        - with ``batching``: if the rows taken are not yet a preferred size (or ``max_batch_size`` when none is
          preferred), wait for more until the *oldest* request has waited ``max_queue_delay_s``, then send what
          there is; without it: one request per batch;
        - while closing, do not wait for more: send what there is.

        Guide: SERVER_DEPLOYMENT_GUIDE.md#task-414-scale-on-one-machine
        """
        # BEGIN SOLUTION
        policy = self.policy
        targets = set(policy.preferred) or {policy.max_batch_size}
        with self.cond:
            while True:
                now = time.monotonic()
                while self.queue and self.queue[0].deadline <= now:
                    late = self.queue.popleft()
                    self.counts["expired"] += 1
                    _settle(late.future, error=ProtocolError(
                        504, f"the request's deadline passed after {now - late.queued_at:.3f} s in the queue"))
                if not self.queue:
                    if not self.accepting:
                        return None
                    self.cond.wait()
                    continue
                rows, n = 0, 0
                for p in self.queue:
                    if n and rows + p.rows > policy.max_batch_size:
                        break
                    rows, n = rows + p.rows, n + 1
                    if not policy.batching:
                        break
                full = (not policy.batching or rows in targets or rows >= policy.max_batch_size
                        or n < len(self.queue))  # the next request does not fit: this batch cannot grow
                waited = now - self.queue[0].queued_at
                if full or not self.accepting or waited >= policy.max_queue_delay_s:
                    batch = [self.queue.popleft() for _ in range(n)]
                    self.counts["batches"] += 1
                    self.counts["rows"] += rows
                    return batch
                self.cond.wait(policy.max_queue_delay_s - waited)
        # END SOLUTION
        """ # BEGIN PROMPT
        # targets = set(self.policy.preferred) or {self.policy.max_batch_size}. Under self.cond, loop:
        # 1. pop expired requests from the front (deadline <= time.monotonic()): _settle(p.future, error=ProtocolError(504, ...))
        # 2. empty queue: return None if not self.accepting, else self.cond.wait() and loop.
        # 3. count how many requests (n) and rows fit, oldest first (only one when not self.policy.batching).
        # 4. send (pop n, count batches/rows, return) when the rows are a target, the batch cannot grow, the pool is
        #    closing, or the oldest has waited max_queue_delay_s; else self.cond.wait(what is left of that delay).
        raise NotImplementedError("Task 4.14: see SERVER_DEPLOYMENT_GUIDE.md#task-414-scale-on-one-machine")
        """  # END PROMPT

    def run_batch(self, slot: int, batch: list[Pending]) -> None:
        """Run ``batch`` on worker ``slot`` and resolve every request's future; the supervisor lives here.

        - Concatenate each input over the batch's requests (in order), ``self.workers[slot].run(inputs,
          timeout_s=...)`` (no longer than the latest deadline allows), split each output back by rows.
        - ``WorkerDied`` / ``TimeoutError`` (the process died or hung): every request of the batch that has been
          tried fewer than ``MAX_ATTEMPTS`` times goes back to the *front* of the queue (count
          ``self.counts["requeued"]``) so another worker runs it next; the others get ``ProtocolError(503,
          ..., retry_after_s=1)``; then :meth:`restart` the slot. A request must never be left unanswered, nor
          answered twice.
        - ``WorkerFailed`` (the model raised): every request gets ``ProtocolError(500, <the model's error>)``.

        Args:
            slot: the worker's index in ``self.workers`` (this thread's worker).
            batch: what :meth:`next_batch` returned, oldest first.

        Guide: SERVER_DEPLOYMENT_GUIDE.md#task-414-scale-on-one-machine
        """
        # BEGIN SOLUTION
        for p in batch:
            p.attempts += 1
        names = list(batch[0].inputs)
        inputs = {n: np.concatenate([p.inputs[n] for p in batch]) if len(batch) > 1 else batch[0].inputs[n]
                  for n in names}
        budget = max(0.05, max(p.deadline for p in batch) - time.monotonic())
        try:
            outputs = self.workers[slot].run(inputs, timeout_s=budget)
        except (WorkerDied, TimeoutError) as e:
            retry = [p for p in batch if p.attempts < MAX_ATTEMPTS]
            with self.cond:  # first hand the batch to the other workers, then restart this one
                self.queue.extendleft(reversed(retry))
                self.counts["requeued"] += len(retry)
                self.cond.notify_all()
            for p in batch:
                if p.attempts >= MAX_ATTEMPTS:
                    self.counts["failed"] += 1
                    _settle(p.future, error=ProtocolError(503, f"the model's worker failed twice on this request "
                                                          f"({e}); retry", retry_after_s=1.0))
            self.restart(slot)
            return
        except WorkerFailed as e:
            self.counts["failed"] += len(batch)
            for p in batch:
                _settle(p.future, error=ProtocolError(500, f"model '{self.model.name}' failed: {e}"))
            return
        start = 0
        for p in batch:
            _settle(p.future, result={k: v[start:start + p.rows] for k, v in outputs.items()})
            start += p.rows
        # END SOLUTION
        """ # BEGIN PROMPT
        # Count p.attempts; inputs = {name: np.concatenate([p.inputs[name] for p in batch])}; run on
        # self.workers[slot] with a timeout from the batch's deadlines. On WorkerDied/TimeoutError: put the
        # retryable requests back at the FRONT (self.queue.extendleft(reversed(retry))) under self.cond and notify,
        # 503 the rest, then self.restart(slot). On WorkerFailed: 500 for all. Else slice each output by rows.
        raise NotImplementedError("Task 4.14: see SERVER_DEPLOYMENT_GUIDE.md#task-414-scale-on-one-machine")
        """  # END PROMPT

    def close(self, *, drain: bool = True, timeout_s: float = 30.0) -> None:
        """Stop taking requests; with ``drain``, answer every queued one first; then stop the workers.

        Args:
            drain: True: the queue and the batches running finish (up to ``timeout_s``); False: queued requests
                get ``ProtocolError(503, ..., retry_after_s=1)`` at once.
            timeout_s: the drain's bound, seconds; whatever is still queued then gets the 503.

        Afterwards: :meth:`submit` raises the 503, every worker thread has returned, every worker process exited.

        Guide: SERVER_DEPLOYMENT_GUIDE.md#task-414-scale-on-one-machine
        """
        # BEGIN SOLUTION
        end = time.monotonic() + timeout_s
        with self.cond:
            self.accepting = False
            self.cond.notify_all()
            if drain:
                while (self.queue or self.busy) and time.monotonic() < end:
                    self.cond.wait(max(0.0, end - time.monotonic()))
            left = list(self.queue)
            self.queue.clear()
            self.cond.notify_all()
        for p in left:
            _settle(p.future, error=ProtocolError(503, f"model '{self.model.name}' shut down before running the "
                                                  "request; retry", retry_after_s=1.0))
        for t in self._threads:
            t.join(max(0.1, end - time.monotonic()) + 5.0)
        for w in self.workers:
            if w is not None:
                w.stop()
        # END SOLUTION
        """ # BEGIN PROMPT
        # Under self.cond: accepting = False, notify_all; with drain, wait on self.cond while the queue or self.busy
        # is non-empty (until timeout_s). 503 whatever is left; join self._threads; stop every worker (w.stop()).
        raise NotImplementedError("Task 4.14: see SERVER_DEPLOYMENT_GUIDE.md#task-414-scale-on-one-machine")
        """  # END PROMPT
