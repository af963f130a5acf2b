"""The HTTP side of your server: the v2 endpoints on aiohttp (helpers, written in full).

``make_app(server)`` routes the KServe v2 endpoints to an ``InferenceServer`` (yours, Task 4.12)::

    GET  /v2                                      server.server_metadata()
    GET  /v2/health/live                          200 {"live": true}
    GET  /v2/health/ready                         200 {"ready": true} while server.ready, else 503
    GET  /v2/models/<m>[/versions/<v>]            server.metadata(m, v)
    GET  /v2/models/<m>[/versions/<v>]/ready      server.find_model(m, v) -> 200 {"name", "ready": true}
    POST /v2/models/<m>[/versions/<v>]/infer      parse_infer_request -> server.infer (thread pool) -> encode
                                                  (or await server.submit_infer(...)'s Future, when it has one)
    GET  /metrics                                 metrics.exposition(), when the server has ``metrics`` (Task 4.15)

What this file does for every request, so that your code only decides: the body is read up to ``max_body_bytes``
(413 beyond); a :class:`~phase4_production.server.protocol.ProtocolError` becomes its status and ``{"error":
message}`` (with ``Retry-After`` for a 503); any other exception becomes a 500 with the exception in the message (a
bug of the server: the grader counts it); more than ``max_in_flight`` inference requests at once are answered 503
with ``Retry-After`` at once rather than queued without bound (a client retries; a queue that grows without bound
only makes every request late); a request takes its slot only once its body has arrived, so slow senders cannot
take them all (a body slower than ``body_timeout_s`` gets 408). ``infer`` runs on a pool of ``threads`` threads
(ONNX Runtime releases the GIL), so the event loop keeps accepting connections while models run; a server that has
``submit_infer(name, version, request) -> Future`` (Task 4.14's) is awaited instead, holding no thread while its
request waits in a batcher's queue. A server with ``metrics`` (Task 4.15's ``ServerMetrics``) gets its ``observe``
as a middleware around every request and its exposition at ``GET /metrics`` (Triton serves metrics on a port of
their own, 8002; here they share the API's port).

:class:`ServerThread` runs the app on 127.0.0.1 in a thread of this process (tests, the grader, the notebook);
``python -m phase4_production.server serve`` runs it as a process.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import threading
import time
from typing import Any

from aiohttp import web

from .triton_peer import free_port
from .protocol import HEADER_LENGTH, ProtocolError, encode_infer_response, error_body, parse_infer_request

__all__ = ["make_app", "ServerThread", "MAX_BODY_BYTES"]

log = logging.getLogger("inference_lab.server")

#: Where the app keeps its counters (``in_flight``); ServerThread.stop reads it while it drains.
STATE = web.AppKey("state", dict)

#: The default body limit: 64 MiB (a batch of 32 ResNet-50 images in FP32 is 19 MiB).
MAX_BODY_BYTES = 64 * 2**20


def _json(obj: Any, status: int = 200, headers: dict | None = None) -> web.Response:
    return web.Response(body=json.dumps(obj).encode(), status=status, content_type="application/json",
                        headers=headers)


def _error(e: ProtocolError) -> web.Response:
    headers = {"Retry-After": str(max(1, round(e.retry_after_s)))} if e.retry_after_s is not None else None
    return web.Response(body=error_body(e.message), status=e.status, content_type="application/json",
                        headers=headers)


def make_app(server: Any, *, max_body_bytes: int = MAX_BODY_BYTES, max_in_flight: int = 64, threads: int = 2,
             retry_after_s: float = 1.0, metrics: Any = None, body_timeout_s: float = 30.0) -> web.Application:
    """The aiohttp application serving ``server`` (an ``InferenceServer``) over the v2 protocol.

    Args:
        server: has ``server_metadata()``, ``ready``, ``find_model(name, version)``, ``metadata(name, version)``
            and ``infer(name, version, request)``.
        max_body_bytes: larger bodies are answered 413.
        max_in_flight: inference requests admitted at once; the next ones get 503 + ``Retry-After``.
        threads: the inference thread pool's size.
        retry_after_s: the ``Retry-After`` of an overload 503, seconds.
        body_timeout_s: a request body not received in full within this many seconds is answered 408 (a client
            that trickles it holds a connection, never an inference slot).
        metrics: has ``observe(request, handler, server)`` and ``exposition()``; default: ``server.metrics`` if the
            server has it.
    """
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="infer")
    state = {"in_flight": 0}

    async def guarded(handler, request: web.Request) -> web.Response:
        try:
            return await handler(request)
        except ProtocolError as e:
            return _error(e)
        except web.HTTPException:
            raise
        except Exception as e:  # a bug of the server's code: answer, log, keep serving
            log.exception("internal error on %s %s", request.method, request.path)
            return _json({"error": f"internal error: {type(e).__name__}: {e}"}, status=500)

    def route(handler):
        async def wrapped(request: web.Request) -> web.Response:
            return await guarded(handler, request)
        return wrapped

    def version_of(request: web.Request) -> str | None:
        return request.match_info.get("version")

    async def live(request):
        return _json({"live": True})

    async def ready(request):
        return _json({"ready": bool(server.ready)}, status=200 if server.ready else 503)

    async def meta(request):
        return _json(server.server_metadata())

    async def model_meta(request):
        return _json(server.metadata(request.match_info["model"], version_of(request)))

    async def model_ready(request):
        server.find_model(request.match_info["model"], version_of(request))
        if not server.ready:
            raise ProtocolError(503, "the server is not ready (starting or draining)", retry_after_s=retry_after_s)
        return _json({"name": request.match_info["model"], "ready": True})

    async def infer(request):
        # The body first, then a slot: a client that trickles its body (a slow-loris) holds a connection, never one
        # of the max_in_flight slots the model's work is bounded by, and is cut off after body_timeout_s.
        if request.content_length is not None and request.content_length > max_body_bytes:
            raise ProtocolError(413, f"request body of {request.content_length} bytes is over this server's "
                                f"limit of {max_body_bytes}")
        try:
            body = await asyncio.wait_for(request.read(), body_timeout_s)
        except web.HTTPRequestEntityTooLarge:
            raise ProtocolError(413, f"request body is over this server's limit of {max_body_bytes} bytes") from None
        except asyncio.TimeoutError:
            raise ProtocolError(408, f"the request body did not arrive within {body_timeout_s:g} s") from None
        except ConnectionError:  # the client hung up mid-body: its fault, not the server's (nginx logs 499)
            raise ProtocolError(499, "the client closed the connection before its body arrived") from None
        if state["in_flight"] >= max_in_flight:
            raise ProtocolError(503, f"overloaded: {max_in_flight} requests in flight; retry", retry_after_s)
        state["in_flight"] += 1
        try:
            raw = request.headers.get(HEADER_LENGTH)
            if raw is not None and not raw.strip().isdigit():
                raise ProtocolError(400, f"{HEADER_LENGTH} must be a number of bytes, got {raw!r}")
            req = parse_infer_request(body, int(raw) if raw is not None else None, max_bytes=max_body_bytes)
            name, version = request.match_info["model"], version_of(request)
            submit = getattr(server, "submit_infer", None)
            if submit is not None:  # Task 4.14: the server queues it and answers through a Future
                outputs = await asyncio.wrap_future(submit(name, version, req))
            else:
                outputs = await asyncio.get_running_loop().run_in_executor(pool, server.infer, name, version, req)
            model = server.find_model(name, version)
            body, headers = encode_infer_response(name, str(model.version), outputs, req.id)
            return web.Response(body=body, headers=headers)
        finally:
            state["in_flight"] -= 1

    metrics = metrics if metrics is not None else getattr(server, "metrics", None)
    middlewares = []
    if metrics is not None:
        @web.middleware
        async def observed(request: web.Request, handler):
            return await metrics.observe(request, handler, server)
        middlewares.append(observed)

        async def metrics_page(request):
            return web.Response(body=metrics.exposition(),
                                headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})

    app = web.Application(client_max_size=max_body_bytes, middlewares=middlewares)
    app[STATE] = state
    base = "/v2/models/{model}"
    app.add_routes([
        web.get("/v2", route(meta)), web.get("/v2/health/live", route(live)), web.get("/v2/health/ready", route(ready)),
        web.get(base, route(model_meta)), web.get(base + "/versions/{version}", route(model_meta)),
        web.get(base + "/ready", route(model_ready)), web.get(base + "/versions/{version}/ready", route(model_ready)),
        web.post(base + "/infer", route(infer)), web.post(base + "/versions/{version}/infer", route(infer)),
    ])
    if metrics is not None:
        app.add_routes([web.get("/metrics", metrics_page)])

    async def close_pool(_app):
        pool.shutdown(wait=False, cancel_futures=True)
    app.on_cleanup.append(close_pool)
    return app


class ServerThread:
    """``make_app(server, **options)`` served from a background thread, as a context manager.

    ``host`` is 127.0.0.1 unless told otherwise (``0.0.0.0`` in a container, so that its port mapping reaches it).

    Attributes: ``port``, ``url`` ("127.0.0.1:P", as tritonclient takes it), ``base`` ("http://127.0.0.1:P").
    ``stop()`` drains: the server stops being ready (new inference requests get 503 + ``Retry-After``), the
    requests in flight are answered (up to ``grace_s``), then the server's ``close()``, if it has one, runs (Task
    4.14's pools finish their queues) and the thread is joined. Nothing admitted is dropped.
    """

    def __init__(self, server: Any, *, host: str = "127.0.0.1", port: int = 0, grace_s: float = 5.0,
                 **options: Any):
        self.server, self.options, self.grace_s, self.host = server, options, grace_s, host
        self.port = port or free_port()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._app: web.Application | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, daemon=True, name=f"v2-server-{self.port}")

    @property
    def url(self) -> str:
        return f"{'127.0.0.1' if self.host in ('0.0.0.0', '') else self.host}:{self.port}"

    @property
    def base(self) -> str:
        return f"http://{self.url}"

    def _main(self) -> None:
        self._loop = asyncio.new_event_loop()
        try:
            self._app = make_app(self.server, **self.options)
            self._runner = web.AppRunner(self._app, shutdown_timeout=self.grace_s, access_log=None)
            self._loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, self.host, self.port, backlog=1024, reuse_address=True)
            self._loop.run_until_complete(site.start())
        except BaseException as e:  # the port is taken, the options are wrong: start() raises it
            self._error = e
            self._started.set()
            return
        self._started.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._runner.cleanup())
        self._loop.close()

    def start(self, timeout_s: float = 10.0) -> ServerThread:
        self._thread.start()
        if not self._started.wait(timeout_s):
            raise RuntimeError(f"the server did not start within {timeout_s:g} s")
        if self._error is not None:
            raise RuntimeError(f"the server could not start on {self.url}: {self._error}") from self._error
        return self

    def stop(self) -> None:
        if self._loop is None or not self._thread.is_alive():
            return
        if getattr(self.server, "ready", False):
            self.server.ready = False  # new requests: 503 + Retry-After (a load balancer sends them elsewhere)
        state = self._app[STATE] if self._app is not None else {"in_flight": 0}
        end = time.monotonic() + self.grace_s
        while state["in_flight"] > 0 and time.monotonic() < end:
            time.sleep(0.01)
        close = getattr(self.server, "close", None)
        if callable(close):
            close(drain=True, timeout_s=max(0.0, end - time.monotonic()))
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(self.grace_s + 10.0)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
