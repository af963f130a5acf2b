"""The grader's planned v2 server: it answers by a fixed plan and logs every request, so a load tool's count of what
happened can be checked against what did.

Run as a script, in its own process (a load tool must not share its event loop or GIL with it)::

    python graders/phase4/server/plannedserver.py --port PORT [--seed 0]

It serves one model, ``planned`` (input ``x`` FP32 ``[rows, 4]``, output ``y = 2 x + 1``, JSON tensors), and answers
the k-th infer request (k = 0, 1, ... in order of arrival) by :func:`plan`: 503 with ``Retry-After: 0.2``, 500,
a connection closed with no reply, a 200 with a wrong output, or, after a planned sleep, the right answer. ``GET
/log`` returns every request as ``[arrived_s, answered_s, kind]`` (``time.monotonic()`` of this process: the same
clock as the load tool's on Linux) and the most requests it ever had in flight. Health and metadata answer 200.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

import numpy as np

RETRY_AFTER_S = 0.2
KINDS = ("ok", "wrong", "500", "503", "cut")


def plan(k: int, rng_u: float) -> tuple[str, float]:
    """The k-th request's kind and its sleep in seconds before a 200 (``rng_u`` in [0, 1): a skewed latency,
    100 ms + 400 ms * u^4: p50 about 125 ms, p95 about 426 ms, mean 180 ms)."""
    if k % 29 == 3:
        return "503", 0.0
    if k % 41 == 7:
        return "500", 0.0
    if k % 67 == 13:
        return "cut", 0.0
    sleep = 0.100 + 0.400 * rng_u ** 4
    return ("wrong" if k % 53 == 11 else "ok"), sleep


def main(argv: list[str] | None = None) -> int:
    from aiohttp import web

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    log: list[list] = []
    state = {"k": 0, "in_flight": 0, "peak": 0}

    async def infer(request: web.Request) -> web.StreamResponse:
        arrived = time.monotonic()
        k = state["k"]
        state["k"] += 1
        state["in_flight"] += 1
        state["peak"] = max(state["peak"], state["in_flight"])
        kind, sleep = plan(k, float(rng.random()))
        try:
            raw = await request.read()
            if kind == "503":
                return web.json_response({"error": "planned overload"}, status=503,
                                         headers={"Retry-After": f"{RETRY_AFTER_S:g}"})
            if kind == "500":
                return web.json_response({"error": "planned failure"}, status=500)
            if kind == "cut":
                request.transport.abort()  # no reply: the client sees the connection closed
                raise asyncio.CancelledError
            await asyncio.sleep(sleep)
            try:
                body = json.loads(raw)
                tensor = body["inputs"][0]
                x = np.asarray(tensor["data"], dtype=np.float32).reshape(tensor["shape"])
            except (ValueError, KeyError, IndexError, TypeError):
                kind = "400"
                return web.json_response({"error": "the planned server takes JSON tensors"}, status=400)
            y = 2.0 * x + 1.0 + (1.0 if kind == "wrong" else 0.0)
            return web.json_response({"model_name": "planned", "model_version": "1", "outputs": [
                {"name": "y", "shape": list(y.shape), "datatype": "FP32", "data": y.reshape(-1).tolist()}]})
        finally:
            state["in_flight"] -= 1
            log.append([arrived, time.monotonic(), kind])

    async def ok(request: web.Request) -> web.Response:
        return web.json_response({"name": "planned", "versions": ["1"], "platform": "python",
                                  "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}],
                                  "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1, 4]}]})

    async def get_log(request: web.Request) -> web.Response:
        return web.json_response({"requests": log, "peak_in_flight": state["peak"]})

    app = web.Application(client_max_size=1 << 20)
    app.router.add_post("/v2/models/planned/infer", infer)
    app.router.add_post("/v2/models/planned/versions/1/infer", infer)
    app.router.add_get("/v2/models/planned", ok)
    app.router.add_get("/v2/health/live", ok)
    app.router.add_get("/v2/health/ready", ok)
    app.router.add_get("/log", get_log)
    print(json.dumps({"port": args.port}), flush=True)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None, backlog=1024,
                handle_signals=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
