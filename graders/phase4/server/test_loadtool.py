"""Task 4.16: the learner's load tool, checked against a server that knows what happened.

The grader starts its planned server (``plannedserver.py``, its own process, 127.0.0.1, a free port): every
request it gets is answered by a fixed plan (503 with ``Retry-After``, 500, a connection cut with no reply, a wrong
output, or the right one after a skewed sleep) and logged with its arrival and reply times. The learner's
``run_load`` drives it with 100 streams; afterwards the grader compares the learner's records with the server's
log. Measured: checks failed.

- counts, exact: requests (each retry is a second request to the server), ``ok``, ``wrong``, ``http 500``, ``lost``
  (the cut connections), and the 503s (one per retry, plus one per request that ended ``http 503``);
- concurrency: the server had at least 90 % of the streams in flight at its peak, and never more than the streams;
- time: nothing sent after the run's end (beyond a retry's wait and its slack), ``t0`` before the first request;
  the learner's latency percentiles (p50, p95, p99 of ``ok`` requests not retried) no shorter than the server's own
  times for them, and within 30 % + 30 ms above (HTTP and the client's own event loop);
- ``summarize_load`` and ``availability_timeline`` on the grader's own records (edge cases of the window), exact.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np

from ...plugin import criterion
from ...submission import LearnerError

SERVER = Path(__file__).with_name("plannedserver.py")
STREAMS = 100
#: Latency tolerance: the learner's percentile <= the server's x (1 + LAT_REL) + LAT_ABS_MS, and >= the server's
#: x (1 - LAT_FLOOR) (a client cannot see a reply before the server sent it; the floor leaves 2 % for rounding).
LAT_REL, LAT_ABS_MS, LAT_FLOOR = 0.30, 30.0, 0.02
#: A retry is sent after the 503's Retry-After (0.2 s) and may be in flight at the end: the last request may arrive
#: this long after the run's end.
END_SLACK_S = 1.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(port: int, path: str, timeout: float = 5.0) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
        return json.loads(r.read())


def _start_server() -> tuple[subprocess.Popen, int]:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, str(SERVER), "--port", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the grader's planned server exited: {proc.stderr.read().decode()[-500:]}")
        try:
            _get(port, "/v2/health/ready", timeout=1.0)
            return proc, port
        except OSError:
            time.sleep(0.05)
    _stop(proc)
    raise RuntimeError("the grader's planned server did not start within 20 s")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def _records_problems(records, t0: float, log: dict, *, warmup: float, duration: float, took_s: float,
                      timeout_s: float) -> tuple[list[str], dict]:
    """Compare the learner's records with the planned server's log."""
    problems: list[str] = []
    served = log["requests"]
    kinds: dict[str, int] = {}
    for _, _, kind in served:
        kinds[kind] = kinds.get(kind, 0) + 1
    try:
        outcomes = [str(r.outcome) for r in records]
        retries = [int(r.retries) for r in records]
        starts = np.array([float(r.start_s) for r in records])
        ends = np.array([float(r.end_s) for r in records])
    except (AttributeError, TypeError, ValueError) as e:
        return [f"the records are not RequestRecords ({type(e).__name__}: {e})"], {}
    mine: dict[str, int] = {}
    for o in outcomes:
        mine[o] = mine.get(o, 0) + 1
    details = {"server_requests": len(served), "server_kinds": kinds, "your_outcomes": mine,
               "your_retries": sum(retries), "server_peak_in_flight": log["peak_in_flight"], "run_took_s": took_s}
    sent = len(records) + sum(retries)
    if sent != len(served):
        problems.append(f"your records account for {sent} requests sent ({len(records)} records + {sum(retries)} "
                        f"retries); the server got {len(served)}")
    for kind, outcome in (("ok", "ok"), ("wrong", "wrong"), ("500", "http 500"), ("cut", "lost")):
        if mine.get(outcome, 0) != kinds.get(kind, 0):
            problems.append(f"{mine.get(outcome, 0)} of your records are {outcome!r}; the server answered "
                            f"{kinds.get(kind, 0)} that way" + (" (it cut the connection without a reply)"
                                                                 if kind == "cut" else ""))
    if sum(retries) + mine.get("http 503", 0) != kinds.get("503", 0):
        problems.append(f"the server answered {kinds.get('503', 0)} requests 503 with Retry-After; your records hold "
                        f"{sum(retries)} retries and {mine.get('http 503', 0)} 'http 503' (each 503 is retried once, "
                        f"a second 503 ends the request)")
    unretried = sum(1 for o, r in zip(outcomes, retries) if o == "http 503" and r == 0)
    if unretried:
        problems.append(f"{unretried} of your records ended 'http 503' without a retry: every 503 the server sent "
                        f"carried Retry-After, which a client honours once before it gives up")
    odd = sorted({o for o in outcomes if o not in ("ok", "wrong", "lost", "refused") and not o.startswith("http ")})
    if odd:
        problems.append(f"outcomes outside the contract: {odd[:5]}")
    peak = int(log["peak_in_flight"])
    if peak > STREAMS:
        problems.append(f"the server had {peak} of your requests in flight at once; {STREAMS} streams allow at most "
                        f"{STREAMS}")
    elif peak < 0.9 * STREAMS:
        problems.append(f"the server never had more than {peak} of your requests in flight: {STREAMS} streams should "
                        f"keep about {STREAMS} there")
    if served:
        first = min(a for a, _, _ in served)
        last = max(a for a, _, _ in served)
        if t0 > first + 1e-3:
            problems.append(f"t0 is {t0 - first:.3f} s after the server got your first request: records cannot be "
                            f"placed on the run's clock")
        if last > t0 + warmup + duration + END_SLACK_S:
            problems.append(f"your last request reached the server {last - (t0 + warmup + duration):.2f} s after the "
                            f"run's end (streams send nothing new after warmup_s + duration_s)")
        if len(starts) and (starts.min() < -1e-3 or (ends < starts).any()):
            problems.append("a record starts before t0 or ends before it starts")
    if took_s > warmup + duration + timeout_s + 3.0:
        problems.append(f"run_load took {took_s:.1f} s for a {warmup + duration:g} s run with a {timeout_s:g} s "
                        f"timeout")
    server_ok = np.array([(b - a) * 1000.0 for a, b, k in served if k == "ok"])
    lat = (ends - starts) * 1000.0
    yours = np.array([lat[i] for i, (o, r) in enumerate(zip(outcomes, retries)) if o == "ok" and r == 0])
    if server_ok.size >= 20 and yours.size >= 20:
        compare = {}
        for q in (50, 95, 99):
            s, y = float(np.percentile(server_ok, q)), float(np.percentile(yours, q))
            compare[f"p{q}_ms"] = {"yours": y, "server": s}
            if y < s * (1 - LAT_FLOOR):
                problems.append(f"your p{q} {y:.1f} ms is shorter than the server's own {s:.1f} ms for those requests "
                                f"(time from before the send to after the reply is read, in ms)")
            elif y > s * (1 + LAT_REL) + LAT_ABS_MS:
                problems.append(f"your p{q} {y:.1f} ms is far above the server's own {s:.1f} ms for those requests "
                                f"(allowed {s * (1 + LAT_REL) + LAT_ABS_MS:.0f} ms): what else is in your timing?")
        details["latency"] = compare
    else:
        problems.append(f"too few ok requests to compare latencies (yours {yours.size}, the server's {server_ok.size})")
    return problems, details


def _crafted_records(make):
    """Grader-made records for ``summarize_load`` and ``availability_timeline`` (warm-up 1 s, window [1, 3] s)."""
    rows = [(0.2, 0.4, "ok", 0), (0.9, 1.1, "ok", 0),          # warm-up: not counted (started before 1 s)
            (1.0, 1.05, "ok", 0), (1.2, 1.25, "ok", 0), (1.3, 1.7, "ok", 1),  # retried: no latency, counted ok
            (1.5, 1.52, "http 500", 0), (1.6, 1.61, "lost", 0), (2.0, 2.3, "wrong", 0),
            (2.1, 2.2, "ok", 0), (2.5, 2.9, "ok", 0), (2.9, 3.2, "ok", 0),  # ended after the window: no throughput
            (3.0, 3.1, "http 503", 1), (3.4, 3.5, "ok", 0), (4.6, 4.7, "refused", 0)]  # after: not counted
    return [make(a, b, o, r, i) for i, (a, b, o, r) in enumerate(rows)], rows


def _expected_summary(rows, warmup: float, duration: float) -> dict:
    lo, hi = warmup, warmup + duration
    window = [r for r in rows if lo <= r[0] <= hi]
    counts: dict[str, int] = {}
    for r in window:
        counts[r[2]] = counts.get(r[2], 0) + 1
    done = sum(1 for r in window if r[2] == "ok" and r[1] <= hi)
    lat = np.array([(r[1] - r[0]) * 1000.0 for r in window if r[2] == "ok" and r[3] == 0])
    return {"requests": len(window), "counts": counts, "retried": sum(1 for r in window if r[3]),
            "requests_per_s": done / duration, "frames_per_s": done * 2 / duration,
            **{f"p{q}_ms": float(np.percentile(lat, q)) for q in (50, 95, 99)},
            "availability": counts.get("ok", 0) / len(window)}


def _expected_timeline(rows, window_s: float) -> list[tuple[float, float, int]]:
    n = int(max(r[1] for r in rows) // window_s) + 1
    ok, total = [0] * n, [0] * n
    for r in rows:
        k = int(r[1] // window_s)
        total[k] += 1
        ok[k] += r[2] == "ok"
    return [(k * window_s, ok[k] / total[k] if total[k] else 1.0, total[k]) for k in range(n)]


def _functions_problems(learner) -> list[str]:
    problems: list[str] = []
    record = learner.attr("RequestRecord")
    records, rows = _crafted_records(lambda a, b, o, r, i: record(a, b, o, r, i))
    want = _expected_summary(rows, 1.0, 2.0)
    try:
        rep = learner.call("summarize_load", records, streams=7, rows=2, warmup_s=1.0, duration_s=2.0)
        for key, v in want.items():
            got = getattr(rep, key)
            same = got == v if isinstance(v, dict) else (got is not None and abs(float(got) - v) <= 1e-6 * max(1, abs(v)))
            if not same:
                problems.append(f"summarize_load: {key} = {got!r}, expected {v!r} (warm-up 1 s, window 2 s, the grader's "
                                f"{len(rows)} records)")
        if (rep.streams, rep.rows) != (7, 2):
            problems.append("summarize_load: streams and rows are not copied into the report")
    except LearnerError as e:
        problems.append(f"summarize_load: {e}")
    for window_s in (1.0, 0.5):
        want_t = _expected_timeline(rows, window_s)
        try:
            got_t = [tuple(x) for x in learner.call("availability_timeline", list(reversed(records)),
                                                     window_s=window_s)]
        except LearnerError as e:
            problems.append(f"availability_timeline: {e}")
            break
        if len(got_t) != len(want_t) or any(
                abs(g[0] - w[0]) > 1e-9 or abs(g[1] - w[1]) > 1e-9 or int(g[2]) != w[2] for g, w in zip(got_t, want_t)):
            problems.append(f"availability_timeline(window_s={window_s:g}): {got_t[:6]}..., expected {want_t[:6]}...")
            break
    try:
        if learner.call("availability_timeline", [], window_s=1.0) != []:
            problems.append("availability_timeline([]) should be []")
    except LearnerError as e:
        problems.append(f"availability_timeline([]): {e}")
    return problems


@criterion("p4.server.loadtool")
def test_loadtool(grade, learner, quick):
    warmup, duration, timeout_s = (0.5, 2.0, 5.0) if quick else (1.0, 4.0, 5.0)
    rng = np.random.default_rng(16)
    inputs = [rng.random((2, 4), dtype=np.float32) for _ in range(16)]
    want = [2.0 * x + 1.0 for x in inputs]
    problems = _functions_problems(learner)
    proc, port = _start_server()
    try:
        started = time.monotonic()
        try:
            t0, records = learner.call("run_load", f"127.0.0.1:{port}", "planned", inputs, streams=STREAMS,
                                       duration_s=duration, warmup_s=warmup, timeout_s=timeout_s, input_name="x",
                                       output_name="y", output_dims=(4,),
                                       check=lambda i, y: bool(np.allclose(y, want[i], rtol=1e-5, atol=1e-5)))
        except LearnerError as e:
            grade.fail(f"run_load: {e}", value=None, details={"problems": problems + [str(e)]})
            return
        took = time.monotonic() - started
        time.sleep(0.2)  # a handler that is still finishing its log line
        log = _get(port, "/log")
    finally:
        _stop(proc)
    run_problems, details = _records_problems(list(records), float(t0), log, warmup=warmup, duration=duration,
                                              took_s=took, timeout_s=timeout_s)
    problems += run_problems
    details["problems"] = problems
    grade.record(len(problems), details=details, message=(
        f"{len(problems)} check(s) failed: " + "; ".join(problems[:4]) if problems else
        f"{STREAMS} streams for {warmup + duration:g} s against the grader's planned server: your records count "
        f"exactly its {len(log['requests'])} requests ({details['server_kinds']}), {log['peak_in_flight']} in flight "
        f"at its peak, latencies p50/p95/p99 "
        + ", ".join(f"{v['yours']:.0f}" for v in details["latency"].values()) + " ms against its own "
        + ", ".join(f"{v['server']:.0f}" for v in details["latency"].values())
        + " ms; summarize_load and availability_timeline exact on the grader's records"))
