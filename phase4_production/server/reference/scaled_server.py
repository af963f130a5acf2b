# REFERENCE SOLUTION: excluded from the learner release (make release).
"""Task 4.14 (2 of 2): Task 4.12's server with every model version served by a :class:`~.pool.WorkerPool`.

``app.py`` sees ``submit_infer`` and awaits the Future it returns: a request waiting in a batcher's queue holds no
thread of the front end, so 100+ concurrent streams cost 100+ small objects, not 100+ threads.

Guide: SERVER_DEPLOYMENT_GUIDE.md#task-414-scale-on-one-machine
"""
from __future__ import annotations

import functools
import time
from concurrent.futures import Future
from typing import Any

import numpy as np

from ..protocol import InferRequest, ProtocolError
from .pool import WorkerPool, then
from .repository import ServedModel
from .server import InferenceServer

__all__ = ["ScaledServer", "DEFAULT_TIMEOUT_S"]

#: Seconds a request may wait and run when neither the request nor the server says otherwise.
DEFAULT_TIMEOUT_S = 30.0


class ScaledServer(InferenceServer):
    """Task 4.12's server with each model version served by a :class:`WorkerPool`.

    Args:
        models: as ``load_repository`` returns them (each version's config says its instances and batching).
        name: the server's name.
        timeout_s: a request's deadline when it sets none (seconds).
        threads: ONNX Runtime threads per worker.
        metrics: a Task 4.15 ``ServerMetrics`` (or None): every model version is added to it, each pool reports its
            batches to its ``record_batch``, and ``app.py`` serves it at ``GET /metrics``.

    ``start()`` (helper) spawns every pool; ``close(drain=True)`` (helper) stops taking requests and closes them.
    ``app.py`` sees :meth:`submit_infer` and awaits its Future instead of running ``infer`` on a thread.
    """

    def __init__(self, models: dict[str, dict[int, ServedModel]], *, name: str = "inference-lab",
                 timeout_s: float = DEFAULT_TIMEOUT_S, threads: int = 1, metrics: Any = None):
        super().__init__(models, name=name)
        self.timeout_s = timeout_s
        self.pools = {(n, v): WorkerPool(m, threads=threads) for n, vs in models.items() for v, m in vs.items()}
        self.metrics = metrics
        if metrics is not None:
            for (n, v), pool in self.pools.items():
                metrics.add_model(n, str(v))
                pool.on_batch = functools.partial(metrics.record_batch, n, str(v))
        self.ready = False

    def start(self) -> ScaledServer:
        """Start every pool; the server is ready after (helper, written in full)."""
        for pool in self.pools.values():
            pool.start()
        self.ready = True
        return self

    def close(self, *, drain: bool = True, timeout_s: float = 30.0) -> None:
        """Not ready (new requests get 503), then close every pool (helper, written in full)."""
        self.ready = False
        for pool in self.pools.values():
            pool.close(drain=drain, timeout_s=timeout_s)

    def __enter__(self) -> ScaledServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def worker_pids(self) -> list[int]:
        """Every live worker process's id (helper)."""
        return [pid for pool in self.pools.values() for pid in pool.worker_pids()]

    def infer(self, name: str, version: str | None, request: InferRequest) -> list[tuple[str, np.ndarray, bool]]:
        """The blocking form of :meth:`submit_infer` (helper, written in full)."""
        return self.submit_infer(name, version, request).result()

    def submit_infer(self, name: str, version: str | None, request: InferRequest) -> Future:
        """Start an inference; returns a Future of what :meth:`InferenceServer.infer` returns.

        Args:
            name, version: as ``find_model``.
            request: the parsed request; its ``parameters`` may hold ``timeout`` (microseconds).

        - 503 (``retry_after_s=1``) when not ready; the model and inputs checked as in Task 4.12 (404/400 raised
          here, at once, before anything is queued);
        - the deadline: the request's ``timeout`` parameter (microseconds, as Triton's) when given, else
          ``self.timeout_s``; a ``timeout`` that is not a positive number is a 400;
        - ``self.pools[(model.name, model.version)].submit(...)`` with the rows (the inputs' first dimension when
          ``max_batch_size > 0``, else 1), then :func:`then` to turn the outputs into ``(name, array, binary)``
          as Task 4.12's ``infer`` does.

        Raises:
            ProtocolError: 503 while not ready or when the pool is closing; 404/400 from ``find_model`` and
            ``check_inputs``; 400 for a bad ``timeout``. Later errors (504 past the deadline, 500 when the model
            fails, 503 when a worker died twice) come through the Future.

        Guide: SERVER_DEPLOYMENT_GUIDE.md#task-414-scale-on-one-machine
        """
        # BEGIN SOLUTION
        if not self.ready:
            raise ProtocolError(503, "the server is not ready (starting or draining)", retry_after_s=1.0)
        model = self.find_model(name, version)
        inputs = self.check_inputs(model, request)
        timeout_s = self.timeout_s
        if "timeout" in request.parameters:
            raw = request.parameters["timeout"]
            if isinstance(raw, bool) or not isinstance(raw, (int, float)) or raw <= 0:
                raise ProtocolError(400, f"parameter 'timeout' must be a positive number of microseconds, got {raw!r}")
            timeout_s = raw / 1e6
        rows = next(iter(inputs.values())).shape[0] if model.config.max_batch_size > 0 else 1
        future = self.pools[(model.name, model.version)].submit(inputs, rows=rows,
                                                                 deadline=time.monotonic() + timeout_s)

        def select(outputs: dict[str, np.ndarray]) -> list[tuple[str, np.ndarray, bool]]:
            if not request.outputs:
                return [(n, outputs[n], request.binary_output) for n in model.output_names]
            return [(o.name, outputs[o.name], o.binary) for o in request.outputs]
        return then(future, select)
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("Task 4.14: see SERVER_DEPLOYMENT_GUIDE.md#task-414-scale-on-one-machine")
        """  # END PROMPT
