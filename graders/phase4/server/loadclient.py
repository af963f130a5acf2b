"""The grader's load client: N concurrent streams of v2 binary-tensor requests against one server, in its own process.

Run as a script (so the server under test never shares a GIL with its load)::

    python graders/phase4/server/loadclient.py --url 127.0.0.1:PORT --model digits --rows 8 --feature 1,32,32 \
        --streams 100 --duration 5 --warmup 1

Each stream sends one request, waits for its answer, sends the next (a closed loop, like perf_analyzer's
concurrency mode), until ``--duration`` seconds have passed (or ``--count`` requests in all). Requests are built and
read by ``tritonclient.http`` (``generate_request_body`` / ``parse_response_body``: the same bytes as its own
``infer``), sent with aiohttp, so one process drives 100+ streams. A 503 with ``Retry-After`` is retried once after
that many seconds (at most 1), as the protocol allows; every other outcome is final.

With ``--pool FILE.npz`` the requests carry the file's inputs (any datatype: ``UINT8`` frames for the GPU criterion)
and every answer is compared with the file's outputs, to ``--tolerance`` of the largest expected value.

Outcomes, one per request: ``ok`` (200 and the output has the right shape, and the right values with ``--expect``
or ``--pool``),
``wrong`` (200 but a wrong output), ``http <status>``, ``refused`` (the connection could not be made: nothing was
sent), ``lost`` (sent, and the connection closed or timed out without a reply). Prints one JSON object: counts,
frames/s over the measured window, latency percentiles (ms) of ``ok`` requests, and, with ``--timeline``, every
request's ``[start_s, end_s, outcome]`` relative to ``t0`` (``time.monotonic()`` of this process: the same clock
as the grader's on Linux).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the grader's own affine model (workload.py)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", required=True, help="host:port")
    p.add_argument("--model", required=True)
    p.add_argument("--input", default="images")
    p.add_argument("--output", default="logits")
    p.add_argument("--rows", type=int, default=8, help="rows (frames) per request")
    p.add_argument("--feature", default="1,32,32", help="the input's dims after the batch")
    p.add_argument("--out-dims", default="10", help="the output's dims after the batch")
    p.add_argument("--streams", type=int, default=100)
    p.add_argument("--duration", type=float, default=5.0, help="seconds of load (after the warm-up)")
    p.add_argument("--warmup", type=float, default=1.0, help="seconds of load not measured")
    p.add_argument("--count", type=int, default=0, help="stop after this many requests in all (0: no bound)")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds a request may take before it is lost")
    p.add_argument("--expect", default="", help="check outputs against the grader's model: dense, affine:V")
    p.add_argument("--pool", default="", help="an npz of request inputs x [K, rows, ...] (any dtype) and their right "
                   "outputs y [K, rows, ...]: sent instead of random FP32 rows (--rows, --feature, --out-dims unused)")
    p.add_argument("--tolerance", type=float, default=2e-3,
                   help="with --pool: an output is right within this share of its largest expected value")
    p.add_argument("--no-retry", action="store_true")
    p.add_argument("--timeline", action="store_true")
    return p.parse_args(argv)


async def _run(args: argparse.Namespace) -> dict:
    import aiohttp
    import tritonclient.http as th

    from tritonclient.utils import np_to_triton_dtype

    want = None
    if args.pool:
        with np.load(args.pool) as data:
            pool, want = list(data["x"]), list(data["y"])
        args.rows, out_dims = pool[0].shape[0], list(want[0].shape[1:])
    else:
        feature = [int(d) for d in args.feature.split(",") if d]
        out_dims = [int(d) for d in args.out_dims.split(",") if d]
        rng = np.random.default_rng()
        pool = [rng.random((args.rows, *feature), dtype=np.float32) for _ in range(16)]
    bodies = []
    for x in pool:
        inp = th.InferInput(args.input, list(x.shape), np_to_triton_dtype(x.dtype))
        inp.set_data_from_numpy(x, binary_data=True)
        body, json_size = th.InferenceServerClient.generate_request_body(
            [inp], outputs=[th.InferRequestedOutput(args.output, binary_data=True)])
        bodies.append((body, json_size))
    if args.expect:
        from graders.phase4.server.workload import expected
        want = [expected(args.expect, x) for x in pool]
    scale = [float(np.abs(w).max()) for w in want] if want is not None else []
    url = f"http://{args.url}/v2/models/{args.model}/infer"
    t0 = time.monotonic()
    measure_from, end = t0 + args.warmup, t0 + args.warmup + args.duration
    records: list[tuple[float, float, str, int]] = []  # (start, end, outcome, retries)
    sent = 0

    async def one(session: aiohttp.ClientSession, k: int) -> tuple[str, float]:
        body, json_size = bodies[k]
        headers = {"Inference-Header-Content-Length": str(json_size), "Content-Type": "application/octet-stream"}
        try:
            async with session.post(url, data=body, headers=headers) as r:
                raw = await r.read()
                if r.status == 503 and "Retry-After" in r.headers:
                    try:
                        wait = min(1.0, float(r.headers["Retry-After"]))
                    except ValueError:
                        wait = 1.0
                    return "retry", wait
                if r.status != 200:
                    return f"http {r.status}", 0.0
                hl = r.headers.get("Inference-Header-Content-Length")
                res = th.InferenceServerClient.parse_response_body(raw, header_length=int(hl) if hl else None)
                y = res.as_numpy(args.output)
        except aiohttp.ClientConnectorError:
            return "refused", 0.0
        except (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError):
            return "lost", 0.0
        except Exception:  # noqa: BLE001 - a body tritonclient cannot read is a wrong answer
            return "wrong", 0.0
        if y is None or list(y.shape) != [args.rows, *out_dims]:
            return "wrong", 0.0
        if want is not None and args.pool and not np.abs(y - want[k]).max() <= args.tolerance * max(1.0, scale[k]):
            return "wrong", 0.0
        if want is not None and not args.pool and not np.allclose(y, want[k], rtol=1e-3, atol=1e-3):
            return "wrong", 0.0
        return "ok", 0.0

    async def stream(session: aiohttp.ClientSession, s: int) -> None:
        nonlocal sent
        k = s
        while time.monotonic() < end and (not args.count or sent < args.count):
            sent += 1
            k = (k + 1) % len(bodies)
            start = time.monotonic()
            outcome, wait = await one(session, k)
            retries = 0
            if outcome == "retry":
                if args.no_retry:
                    outcome = "http 503"
                else:
                    await asyncio.sleep(wait)
                    retries = 1
                    outcome, _ = await one(session, k)
                    if outcome == "retry":
                        outcome = "http 503"
            records.append((start - t0, time.monotonic() - t0, outcome, retries))
            if outcome in ("refused",):
                await asyncio.sleep(0.05)

    timeout = aiohttp.ClientTimeout(total=args.timeout)
    connector = aiohttp.TCPConnector(limit=args.streams + 8, force_close=False)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        await asyncio.gather(*(stream(session, s) for s in range(args.streams)))
    window = [r for r in records if r[1] >= measure_from - t0 and r[0] <= end - t0 and r[2] == "ok"]
    measured = [r for r in records if r[0] >= measure_from - t0]
    counts: dict[str, int] = {}
    for r in records:
        counts[r[2]] = counts.get(r[2], 0) + 1
    lat = np.array([r[1] - r[0] for r in measured if r[2] == "ok" and r[3] == 0]) * 1000.0
    done_in = [r for r in measured if r[2] == "ok" and r[1] <= end - t0]
    span = min(args.duration, max(1e-9, (max((r[1] for r in records), default=0.0) - (measure_from - t0))))
    out = {"t0": t0, "requests": len(records), "counts": counts, "retried": sum(r[3] for r in records),
           "rows_per_request": args.rows, "streams": args.streams, "measured_s": span,
           "requests_per_s": len(done_in) / span if span else 0.0,
           "frames_per_s": len(done_in) * args.rows / span if span else 0.0,
           "p50_ms": float(np.percentile(lat, 50)) if lat.size else None,
           "p95_ms": float(np.percentile(lat, 95)) if lat.size else None,
           "p99_ms": float(np.percentile(lat, 99)) if lat.size else None,
           "in_window_ok": len(window)}
    if args.timeline:
        out["timeline"] = [[round(a, 4), round(b, 4), o] for a, b, o, _ in records]
    return out


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    print(json.dumps(asyncio.run(_run(args))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
