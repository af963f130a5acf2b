"""Task 4.15: monitoring. Triton's per-model metrics, a latency histogram and an access log, for your server.

``GET /metrics`` (``app.py`` routes it when the server has ``metrics``) answers in the Prometheus text format with
the names real Triton uses, so one Grafana dashboard (``deploy/grafana``) and one set of alerts watch both::

    nv_inference_request_success{model,version}            counter   requests answered 200
    nv_inference_request_failure{model,version,reason}     counter   requests a model accepted, then failed
    nv_inference_count{model,version}                      counter   rows (frames) inferred
    nv_inference_exec_count{model,version}                 counter   batches executed
    nv_inference_request_duration_us{model,version}        counter   summed request time of the successes, us
    nv_inference_queue_duration_us{model,version}          counter   summed time executed requests queued, us
    nv_inference_compute_infer_duration_us{model,version}  counter   summed time executed requests ran, us
    nv_inference_pending_request_count{model,version}      gauge     inference requests in the server now
    inference_lab_request_duration_seconds{model,version}  histogram latency of the successes, seconds
    inference_lab_http_responses_total{code}               counter   every inference reply, by HTTP status

What Triton counts, measured on its own ``/metrics`` (tests/phase4_server/test_metrics.py sends it the same
requests): a malformed request (wrong shape, wrong dtype, bad JSON) is refused before any model sees it and is
*not* a failure of the model; a request that was queued and then failed is (``REJECTED``: refused or timed out
by the scheduler, ``BACKEND``: the model failed). Every series of a model exists, at 0, from the moment it loads.

Guide: SERVER_DEPLOYMENT_GUIDE.md#task-415-monitoring
"""
from __future__ import annotations

import json
import logging
import time
import uuid
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Metric, generate_latest

from ..protocol import ProtocolError

__all__ = ["ServerMetrics", "FAILURE_REASONS", "LATENCY_BUCKETS_S", "ACCESS_LOG", "exposition"]

#: Triton's ``reason`` label values of ``nv_inference_request_failure``.
FAILURE_REASONS = ("REJECTED", "CANCELED", "BACKEND", "OTHER")
#: The latency histogram's upper bounds, seconds (0.5 ms .. 10 s; +Inf is added).
LATENCY_BUCKETS_S = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
#: The logger of the access log: one JSON object per inference request.
ACCESS_LOG = "inference_lab.access"

_LABELS = ("model", "version")


def exposition(registry: CollectorRegistry) -> bytes:
    """``registry`` in the Prometheus text format, Triton's way (helper, written in full).

    prometheus-client writes a counter ``c`` as ``c_total`` plus ``c_created``; Triton writes ``c`` and no
    ``_created``. This keeps the names a Triton dashboard queries: counters without ``_total`` unless their name
    has it (``inference_lab_http_responses_total``), and no ``_created`` series anywhere.
    """
    families = []
    for family in registry.collect():
        samples = [s for s in family.samples if not s.name.endswith("_created")]
        if family.type == "counter" and not family.name.endswith("_total") and not _keeps_total(family.name):
            out = Metric(family.name, family.documentation, "unknown")
            for s in samples:
                out.add_sample(family.name, s.labels, s.value)
            families.append(("counter", out))
        else:
            out = Metric(family.name, family.documentation, family.type)
            out.samples = samples
            families.append((None, out))

    class _Families:
        def __init__(self, metrics):
            self.metrics = metrics

        def collect(self):
            return self.metrics

    chunks = []
    for kind, metric in families:
        text = generate_latest(_Families([metric])).decode()
        if kind == "counter":  # an untyped family, written as the counter it is
            text = text.replace(f"# TYPE {metric.name} untyped", f"# TYPE {metric.name} counter", 1)
        chunks.append(text)
    return "".join(chunks).encode()


def _keeps_total(name: str) -> bool:
    return name.startswith("inference_lab_")


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class ServerMetrics:
    """Triton's per-model metrics, the latency histogram and the access log of one server.

    Args:
        buckets: the histogram's upper bounds, seconds.
        registry: where the metrics live (a fresh one by default: two servers in a process never mix counts).

    Attributes: the prometheus-client objects ``success``, ``failure`` (labels model, version, reason),
    ``inference_count``, ``exec_count``, ``request_duration_us``, ``queue_duration_us``, ``compute_duration_us``,
    ``pending`` (a Gauge), ``latency`` (a Histogram, seconds), ``responses`` (label code) and ``log`` (the
    ``inference_lab.access`` logger).

    Helpers (written in full): :meth:`exposition` (the ``/metrics`` body), :meth:`log_request` (one JSON line).
    Yours: :meth:`add_model`, :meth:`record_batch`, :meth:`record_request`, :meth:`observe`.
    """

    def __init__(self, *, buckets: tuple[float, ...] = LATENCY_BUCKETS_S, registry: CollectorRegistry | None = None):
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.success = Counter("nv_inference_request_success",
                               "Number of successful inference requests, all batch sizes", _LABELS, registry=r)
        self.failure = Counter("nv_inference_request_failure",
                               "Number of failed inference requests, all batch sizes", (*_LABELS, "reason"), registry=r)
        self.inference_count = Counter("nv_inference_count", "Number of inferences performed (rows)", _LABELS,
                                       registry=r)
        self.exec_count = Counter("nv_inference_exec_count", "Number of model executions performed (batches)",
                                  _LABELS, registry=r)
        self.request_duration_us = Counter("nv_inference_request_duration_us",
                                           "Cumulative inference request duration in microseconds", _LABELS,
                                           registry=r)
        self.queue_duration_us = Counter("nv_inference_queue_duration_us",
                                         "Cumulative inference queuing duration in microseconds", _LABELS, registry=r)
        self.compute_duration_us = Counter("nv_inference_compute_infer_duration_us",
                                           "Cumulative compute inference duration in microseconds", _LABELS,
                                           registry=r)
        self.pending = Gauge("nv_inference_pending_request_count",
                             "Instantaneous number of pending requests awaiting execution per-model", _LABELS,
                             registry=r)
        self.latency = Histogram("inference_lab_request_duration_seconds",
                                 "Latency of successful inference requests in the server, seconds", _LABELS,
                                 buckets=buckets, registry=r)
        self.responses = Counter("inference_lab_http_responses", "Inference replies by HTTP status code", ("code",),
                                 registry=r)
        self.log = logging.getLogger(ACCESS_LOG)

    # --- helpers (written in full) ------------------------------------------------------------------------------
    def exposition(self) -> bytes:
        """The ``GET /metrics`` body (Prometheus text format, Triton's names)."""
        return exposition(self.registry)

    def log_request(self, **fields: Any) -> None:
        """Write one access-log line: ``{"ts": ISO-8601 UTC, **fields}`` as JSON, at INFO."""
        self.log.info(json.dumps({"ts": _now_iso(), **fields}, default=str))

    # -------------------------------------------------------------------------------------------------------------
    # ## Task 4.15: count what happened, time it, log it
    # -------------------------------------------------------------------------------------------------------------
    def add_model(self, model: str, version: str) -> None:
        """Create every series of one model version at 0, as Triton does when it loads a model.

        Args:
            model: the model's name.
            version: its version, as a string ("1").

        The success, failure (one per reason of :data:`FAILURE_REASONS`), count, exec-count and duration counters,
        the pending gauge and the latency histogram, each with ``model`` and ``version`` labels (both strings). A
        series that only appears at its first failure breaks ``rate()`` and alerts on it: Prometheus cannot tell
        "0 failures" from "no data".

        Guide: SERVER_DEPLOYMENT_GUIDE.md#task-415-monitoring
        """
        # metric.labels(model=..., version=...) creates a series at 0: do it for each metric, and for each reason.
        raise NotImplementedError("Task 4.15: see SERVER_DEPLOYMENT_GUIDE.md#task-415-monitoring")

    def record_batch(self, model: str, version: str, *, rows: int, queue_s: list[float], compute_s: float) -> None:
        """Count one batch a worker executed (the pool calls it after the batch's requests were answered).

        Args:
            model, version: the model version that ran it.
            rows: the batch's rows (inferences), all its requests together.
            queue_s: how long each request of the batch waited in the queue, seconds (one entry per request).
            compute_s: how long the batch ran, seconds (the worker's round trip).

        Triton's accounting: ``nv_inference_exec_count`` + 1; ``nv_inference_count`` + rows; the queue counter +
        every request's queue time; the compute counter + ``compute_s`` *for each request* of the batch (the
        counters are per request: divided by the success count they give the mean per request). Durations in
        microseconds.

        Guide: SERVER_DEPLOYMENT_GUIDE.md#task-415-monitoring
        """
        # Four .labels(model=..., version=...).inc(...) calls; mind the units (microseconds) and "per request".
        raise NotImplementedError("Task 4.15: see SERVER_DEPLOYMENT_GUIDE.md#task-415-monitoring")

    def record_request(self, model: str | None, version: str | None, *, status: int, duration_s: float) -> None:
        """Count one answered inference request.

        Args:
            model, version: the model version that served it; None when the request named no model this server
                has (a 404): then only ``responses`` counts it: a label per unknown name would let any client grow
                your metrics without bound.
            status: the HTTP status of the reply.
            duration_s: the request's time in the server, seconds.

        - every reply: ``responses`` by ``code`` (the status as a string);
        - 200: ``success`` + 1, the duration counter + the duration in microseconds, the histogram observes the
          duration in seconds;
        - 503 and 504 (refused or timed out after the request was accepted): ``failure`` + 1, reason
          ``REJECTED``; 500: reason ``BACKEND``; any other 5xx: ``OTHER``;
        - 4xx: the request was malformed: nothing per model (Triton's model never saw it).

        Guide: SERVER_DEPLOYMENT_GUIDE.md#task-415-monitoring
        """
        # responses by code first; then by status: 200, 503/504, 500, other 5xx, 4xx (nothing more).
        raise NotImplementedError("Task 4.15: see SERVER_DEPLOYMENT_GUIDE.md#task-415-monitoring")

    async def observe(self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
                      server: Any) -> web.StreamResponse:
        """The aiohttp middleware of the metrics: time, count and log every inference request.

        ``app.py`` calls it for every request, after routing (``request.match_info`` holds ``model`` and maybe
        ``version``). Anything that is not an inference (``POST .../infer``) goes straight to ``handler``.

        Args:
            request: the aiohttp request.
            handler: the route's handler: ``await handler(request)`` is the response (a ``ProtocolError`` has
                already become its status there).
            server: the server (``find_model``).

        Returns:
            The handler's response, with the ``X-Request-ID`` header.

        For an inference:

        - resolve the served version with ``server.find_model(name, version)`` (its ``.name`` and ``.version``);
          a ``ProtocolError`` means an unknown model: labels None;
        - the request id: the ``X-Request-ID`` header, or a new ``uuid.uuid4().hex``; the reply carries it back in
          ``X-Request-ID`` (a client quoting it finds its log line);
        - ``pending`` + 1 while ``handler(request)`` runs (- 1 however it ends), timed with
          ``time.perf_counter()``;
        - the status: the response's, or an ``web.HTTPException``'s (re-raised after counting);
        - :meth:`record_request`, then :meth:`log_request` with ``event="infer"``, ``request_id``, ``model``,
          ``version``, ``status``, ``duration_ms`` (rounded to 0.001) and ``remote`` (``request.remote``).

        Guide: SERVER_DEPLOYMENT_GUIDE.md#task-415-monitoring
        """
        # Pass non-inference requests through. Resolve (model, version) or None; pick the request id; pending up;
        # start = time.perf_counter(); try: response = await handler(request) (status, X-Request-ID header) /
        # except web.HTTPException (status, raise) / finally: pending down, record_request, log_request.
        raise NotImplementedError("Task 4.15: see SERVER_DEPLOYMENT_GUIDE.md#task-415-monitoring")
