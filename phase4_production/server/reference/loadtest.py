# REFERENCE SOLUTION: excluded from the learner release (make release).
"""Task 4.16: a load and availability test. 100+ concurrent streams against any KServe v2 server, and what they saw.

The same tool measures your server and real Triton (``python -m phase4_production.server load --port 8000`` or
``--port 8010``): perf_analyzer's concurrency mode, in miniature. Each of ``streams`` streams sends one request,
waits for its answer, sends the next (a closed loop: the offered load adapts to the server), until the run's time
is up. Every request ends in exactly one outcome::

    ok           200, and the output has the right shape (and the right values, when you pass ``check``)
    wrong        200, but the output is missing, malformed or wrong
    http <code>  any other status (a 503 with Retry-After is retried once first, after that many seconds)
    refused      the connection could not be made: nothing was sent
    lost         sent, then the connection closed or the timeout passed without a reply

and one :class:`RequestRecord` (when it started and ended, seconds after the run's start; its outcome; whether it
was retried). :func:`summarize_load` turns the records into a :class:`LoadTestReport` (throughput, p50/p95/p99,
errors, availability); :func:`availability_timeline` into the success rate per window, the plot of an incident.

Guide: SERVER_DEPLOYMENT_GUIDE.md#task-416-a-load-and-availability-test
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import json
import time
from dataclasses import dataclass
from typing import Callable

import aiohttp
import numpy as np

__all__ = ["RequestRecord", "LoadTestReport", "encode_request", "decode_output", "run_load", "send_request",
           "run_streams", "summarize_load", "availability_timeline", "OUTCOMES", "RETRY_AFTER_MAX_S"]

#: The outcomes a request can end in (``http <code>`` for each status code but 200).
OUTCOMES = ("ok", "wrong", "http <code>", "refused", "lost")
#: The longest wait a ``Retry-After`` is honoured for, seconds (a longer one is waited this long).
RETRY_AFTER_MAX_S = 1.0

Check = Callable[[int, np.ndarray], bool]


@dataclass(frozen=True)
class RequestRecord:
    """One request of a load run.

    Attributes:
        start_s: when it was first sent, seconds after the run's start (``time.monotonic()`` minus ``t0``).
        end_s: when its outcome was known (after the retry, if any), same clock.
        outcome: one of :data:`OUTCOMES` (``"http 503"``, ``"http 500"``, ...).
        retries: 1 when a 503 with ``Retry-After`` was retried, else 0.
        input_index: which of the run's inputs it sent.
    """

    start_s: float
    end_s: float
    outcome: str
    retries: int = 0
    input_index: int = 0

    @property
    def latency_ms(self) -> float:
        return (self.end_s - self.start_s) * 1000.0


@dataclass
class LoadTestReport:
    """What a load run measured, over its measured window (after the warm-up).

    Attributes:
        streams: concurrent streams (requests in flight at most).
        rows: rows (frames) per request.
        measured_s: the measured window, seconds (``duration_s`` of the run).
        requests: requests started in the window.
        counts: outcome -> requests started in the window (sums to ``requests``).
        retried: requests started in the window that were retried once.
        requests_per_s, frames_per_s: ``ok`` requests that both started and ended in the window, per second of it
            (and times ``rows``).
        p50_ms, p95_ms, p99_ms: latency percentiles of the ``ok`` requests started in the window and not retried
            (numpy's linear percentiles), ms; None when there are none.
        availability: ``ok / requests`` in the window (1.0 when nothing was sent).
    """

    streams: int
    rows: int
    measured_s: float
    requests: int
    counts: dict[str, int]
    retried: int
    requests_per_s: float
    frames_per_s: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    availability: float

    def summary(self) -> str:
        """perf_analyzer's one line, and the errors."""
        def ms(v):
            return "-" if v is None else f"{v:.1f}"
        errors = ", ".join(f"{k}: {v}" for k, v in sorted(self.counts.items()) if k != "ok") or "none"
        return (f"{self.streams} streams, {self.rows} rows/request, {self.measured_s:g} s: "
                f"{self.requests_per_s:.1f} requests/s ({self.frames_per_s:.1f} frames/s), p50 {ms(self.p50_ms)} ms, "
                f"p95 {ms(self.p95_ms)} ms, p99 {ms(self.p99_ms)} ms; availability {self.availability:.4%} of "
                f"{self.requests} requests ({self.retried} retried); errors: {errors}")


# -----------------------------------------------------------------------------------------------------------------
# ## helpers (written in full)
# -----------------------------------------------------------------------------------------------------------------
def encode_request(x: np.ndarray, *, input_name: str, output_name: str) -> tuple[bytes, dict[str, str]]:
    """One v2 infer request for the FP32 array ``x`` (``[rows, ...]``), as (body, headers): JSON tensors, which
    your server and Triton both accept (helper, written in full)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    body = {"inputs": [{"name": input_name, "shape": list(x.shape), "datatype": "FP32",
                        "data": x.reshape(-1).tolist()}],
            "outputs": [{"name": output_name}]}
    return json.dumps(body).encode(), {"Content-Type": "application/json"}


def decode_output(payload: bytes, headers, output_name: str) -> np.ndarray:
    """The output ``output_name`` of a 200 reply, JSON or binary tensors (helper, written in full).

    Raises:
        ValueError: the reply is not a v2 infer response with that output.
    """
    import tritonclient.http as th

    length = headers.get("Inference-Header-Content-Length")
    try:
        result = th.InferenceServerClient.parse_response_body(payload, header_length=int(length) if length else None)
        y = result.as_numpy(output_name)
    except Exception as e:  # noqa: BLE001 - any unreadable reply is a wrong answer
        raise ValueError(f"not a v2 infer response: {e}") from None
    if y is None:
        raise ValueError(f"the reply has no output {output_name!r}")
    return y


def run_load(url: str, model: str, inputs: list[np.ndarray], *, streams: int = 100, duration_s: float = 10.0,
             warmup_s: float = 1.0, timeout_s: float = 10.0, input_name: str = "images", output_name: str = "logits",
             output_dims: tuple[int, ...] = (10,), check: Check | None = None) -> tuple[float, list[RequestRecord]]:
    """Run :func:`run_streams` to the end (helper, written in full): ``(t0, records)``.

    In a thread that already runs an event loop (a Jupyter kernel does), the run gets a thread and a loop of its
    own, and this call waits for it.
    """
    run = run_streams(url, model, inputs, streams=streams, duration_s=duration_s, warmup_s=warmup_s,
                      timeout_s=timeout_s, input_name=input_name, output_name=output_name, output_dims=output_dims,
                      check=check)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(run)
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="run_load") as pool:
        return pool.submit(asyncio.run, run).result()


# -----------------------------------------------------------------------------------------------------------------
# ## Task 4.16: a load and availability test
# -----------------------------------------------------------------------------------------------------------------
async def send_request(session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str], *,
                       output_name: str, output_shape: tuple[int, ...], check: Callable[[np.ndarray], bool] | None
                       ) -> tuple[str, float]:
    """Send one request and classify what came back: ``(outcome, retry_after_s)``.

    Args:
        session: the run's ``aiohttp.ClientSession`` (its timeout bounds the request).
        url: ``http://host:port/v2/models/<model>/infer``.
        body, headers: from :func:`encode_request`.
        output_name, output_shape: the output a right answer has, and its full shape (``[rows, ...]``).
        check: ``check(y) -> bool`` for the values, or None (then the shape decides).

    Returns:
        ``("retry", seconds)`` for a 503 that carries ``Retry-After`` (seconds, capped at
        :data:`RETRY_AFTER_MAX_S`; 1.0 when it is not a number); else ``(outcome, 0.0)`` with outcome one of
        ``"ok"``, ``"wrong"`` (200 but :func:`decode_output` raised, or the shape or ``check`` disagrees),
        ``"http <status>"``, ``"refused"`` (``aiohttp.ClientConnectorError``: nothing was sent), ``"lost"`` (any other
        ``aiohttp.ClientError``, ``asyncio.TimeoutError`` or ``ConnectionError``: sent, no reply). Never raises for
        what the server did.

    Guide: SERVER_DEPLOYMENT_GUIDE.md#task-416-a-load-and-availability-test
    """
    # BEGIN SOLUTION
    try:
        async with session.post(url, data=body, headers=headers) as r:
            payload = await r.read()
            status, reply_headers = r.status, r.headers
    except aiohttp.ClientConnectorError:
        return "refused", 0.0
    except (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError):
        return "lost", 0.0
    if status == 503 and "Retry-After" in reply_headers:
        try:
            wait = float(reply_headers["Retry-After"])
        except ValueError:
            wait = 1.0
        return "retry", min(max(wait, 0.0), RETRY_AFTER_MAX_S)
    if status != 200:
        return f"http {status}", 0.0
    try:
        y = decode_output(payload, reply_headers, output_name)
    except ValueError:
        return "wrong", 0.0
    if tuple(y.shape) != tuple(output_shape) or (check is not None and not check(y)):
        return "wrong", 0.0
    return "ok", 0.0
    # END SOLUTION
    """ # BEGIN PROMPT
    # async with session.post(url, data=body, headers=headers) as r: read the body and the status inside the block;
    # the except clauses tell "refused" from "lost" (ClientConnectorError is a ClientError: catch it first).
    raise NotImplementedError("Task 4.16: see SERVER_DEPLOYMENT_GUIDE.md#task-416-a-load-and-availability-test")
    """  # END PROMPT


async def run_streams(url: str, model: str, inputs: list[np.ndarray], *, streams: int = 100,
                      duration_s: float = 10.0, warmup_s: float = 1.0, timeout_s: float = 10.0,
                      input_name: str = "images", output_name: str = "logits", output_dims: tuple[int, ...] = (10,),
                      check: Check | None = None) -> tuple[float, list[RequestRecord]]:
    """``streams`` closed-loop streams of infer requests for ``warmup_s + duration_s`` seconds.

    Args:
        url: the server, ``host:port`` (``http://`` is added).
        model: the model's name (the URL without a version: the server's newest).
        inputs: FP32 arrays ``[rows, ...]``, encoded once, before the first request (building a body is not the
            server's time). Stream ``s`` sends ``inputs[(s + k) % len(inputs)]`` as its k-th request.
        streams: concurrent streams (>= 1): at most this many requests in flight, and this many as long as the
            run lasts.
        duration_s, warmup_s: the run's length after its warm-up, seconds. A stream sends no new request once
            ``warmup_s + duration_s`` have passed since ``t0``; what is in flight then is finished.
        timeout_s: the longest a request may take (``aiohttp.ClientTimeout(total=timeout_s)``): then it is lost.
        input_name, output_name, output_dims: the model's input and output, and the output's dims after the batch.
        check: ``check(input_index, y) -> bool``, the values of a right answer (None: the shape decides).

    Returns:
        ``(t0, records)``: ``t0`` the ``time.monotonic()`` the run started at (just before the first request), and
        one :class:`RequestRecord` per request, its times relative to ``t0``, in the order they ended. A request
        answered 503 with ``Retry-After`` is sent again once after that wait (by :func:`send_request`'s value)
        and keeps its first ``start_s`` (its latency includes the wait); a second 503 ends it as ``"http 503"``.
        A stream whose request was refused waits 50 ms before its next (a closed port answers at once: do not
        spin).

    Raises:
        ValueError: ``streams < 1``, no inputs, or a negative duration.

    Tolerance the grader applies (p4.server.loadtool): against the grader's own server, which logs every request
    it got and how it answered, your records must count exactly what it did (requests, retries, each outcome), at
    most and at least ``streams`` requests in flight, nothing sent after the run's end, and your latencies within
    the server's own times for them (never shorter) plus 30 % and 30 ms.

    Guide: SERVER_DEPLOYMENT_GUIDE.md#task-416-a-load-and-availability-test
    """
    # BEGIN SOLUTION
    if streams < 1 or not inputs or duration_s < 0 or warmup_s < 0:
        raise ValueError(f"need streams >= 1, inputs and durations >= 0 (got streams={streams}, "
                         f"{len(inputs)} inputs, duration {duration_s}, warm-up {warmup_s})")
    target = f"http://{url}/v2/models/{model}/infer"
    encoded = [encode_request(x, input_name=input_name, output_name=output_name) for x in inputs]
    shapes = [(int(x.shape[0]), *output_dims) for x in inputs]
    records: list[RequestRecord] = []
    t0 = time.monotonic()
    end = t0 + warmup_s + duration_s

    async def stream(session: aiohttp.ClientSession, s: int) -> None:
        k = 0
        while time.monotonic() < end:
            i = (s + k) % len(inputs)
            k += 1
            body, headers = encoded[i]
            ok = None if check is None else (lambda y, i=i: check(i, y))
            start = time.monotonic()
            outcome, wait = await send_request(session, target, body, headers, output_name=output_name,
                                               output_shape=shapes[i], check=ok)
            retries = 0
            if outcome == "retry":
                await asyncio.sleep(wait)
                retries = 1
                outcome, _ = await send_request(session, target, body, headers, output_name=output_name,
                                                output_shape=shapes[i], check=ok)
                if outcome == "retry":
                    outcome = "http 503"
            records.append(RequestRecord(start - t0, time.monotonic() - t0, outcome, retries, i))
            if outcome == "refused":
                await asyncio.sleep(0.05)

    connector = aiohttp.TCPConnector(limit=streams)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s), connector=connector) as session:
        await asyncio.gather(*(stream(session, s) for s in range(streams)))
    return t0, records
    # END SOLUTION
    """ # BEGIN PROMPT
    # Encode every input first. Then one coroutine per stream (a while loop until the end time, send_request,
    # the retry, a RequestRecord), all gathered inside one ClientSession whose TCPConnector(limit=streams) and
    # ClientTimeout(total=timeout_s) bound the connections and each request.
    raise NotImplementedError("Task 4.16: see SERVER_DEPLOYMENT_GUIDE.md#task-416-a-load-and-availability-test")
    """  # END PROMPT


def summarize_load(records: list[RequestRecord], *, streams: int, rows: int, warmup_s: float,
              duration_s: float) -> LoadTestReport:
    """The report of a run: its measured window is ``[warmup_s, warmup_s + duration_s]`` on the records' clock.

    Args:
        records: a run's records (any order).
        streams, rows: the run's streams and rows per request (copied into the report).
        warmup_s, duration_s: the run's warm-up and measured length, seconds.

    Returns:
        :class:`LoadTestReport`: ``requests`` and ``counts`` over the records that *started* in the window;
        ``retried`` those of them with ``retries``; ``requests_per_s`` = ``ok`` records that started and ended
        in the window / ``duration_s`` (``frames_per_s`` times ``rows``); p50/p95/p99 with ``np.percentile``
        (linear) over the latencies (ms) of the ``ok`` records started in the window with ``retries == 0`` (a
        retried request's latency holds the server's ``Retry-After``, not its speed), None when there are none;
        ``availability`` = ``counts["ok"] / requests`` (1.0 when 0 requests).

    Raises:
        ValueError: ``duration_s <= 0``.

    Guide: SERVER_DEPLOYMENT_GUIDE.md#task-416-a-load-and-availability-test
    """
    # BEGIN SOLUTION
    if duration_s <= 0:
        raise ValueError(f"the measured window must be longer than 0 s (got {duration_s})")
    lo, hi = warmup_s, warmup_s + duration_s
    window = [r for r in records if lo <= r.start_s <= hi]
    counts: dict[str, int] = {}
    for r in window:
        counts[r.outcome] = counts.get(r.outcome, 0) + 1
    done = sum(1 for r in window if r.outcome == "ok" and r.end_s <= hi)
    lat = np.array([r.latency_ms for r in window if r.outcome == "ok" and r.retries == 0])

    def pct(q: float) -> float | None:
        return float(np.percentile(lat, q)) if lat.size else None
    return LoadTestReport(streams=streams, rows=rows, measured_s=duration_s, requests=len(window), counts=counts,
                          retried=sum(1 for r in window if r.retries), requests_per_s=done / duration_s,
                          frames_per_s=done * rows / duration_s, p50_ms=pct(50), p95_ms=pct(95), p99_ms=pct(99),
                          availability=counts.get("ok", 0) / len(window) if window else 1.0)
    # END SOLUTION
    """ # BEGIN PROMPT
    # Filter the window by start time; count outcomes; the throughput counts only what also ended in it.
    raise NotImplementedError("Task 4.16: see SERVER_DEPLOYMENT_GUIDE.md#task-416-a-load-and-availability-test")
    """  # END PROMPT


def availability_timeline(records: list[RequestRecord], *, window_s: float = 1.0) -> list[tuple[float, float, int]]:
    """The success rate over time, by when requests *ended*: the plot of an incident (a killed worker, a restart).

    Args:
        records: a run's records (any order).
        window_s: the width of a window, seconds (> 0).

    Returns:
        One ``(window_start_s, ok_share, requests)`` per window ``[k * window_s, (k + 1) * window_s)`` from
        ``k = 0`` to the window of the last ``end_s``, in order, windows with no request included as
        ``(start, 1.0, 0)`` (nothing failed in them); ``ok_share`` = ``ok`` records that ended in the window / all
        that ended in it. ``[]`` for no records.

    Raises:
        ValueError: ``window_s <= 0``.

    Guide: SERVER_DEPLOYMENT_GUIDE.md#task-416-a-load-and-availability-test
    """
    # BEGIN SOLUTION
    if window_s <= 0:
        raise ValueError(f"window_s must be > 0 (got {window_s})")
    if not records:
        return []
    n = int(max(r.end_s for r in records) // window_s) + 1
    ok, total = [0] * n, [0] * n
    for r in records:
        k = max(0, int(r.end_s // window_s))
        total[k] += 1
        ok[k] += r.outcome == "ok"
    return [(k * window_s, ok[k] / total[k] if total[k] else 1.0, total[k]) for k in range(n)]
    # END SOLUTION
    """ # BEGIN PROMPT
    # One bucket per window: int(end_s // window_s); count all and ok; empty windows are (start, 1.0, 0).
    raise NotImplementedError("Task 4.16: see SERVER_DEPLOYMENT_GUIDE.md#task-416-a-load-and-availability-test")
    """  # END PROMPT
