"""Task 4.14: the learner's ScaledServer behind the part's HTTP side, attacked: slow clients, then a flood.

Each phase runs while a well-behaved client (the probe) sends requests one at a time and checks each answer:

- **slow-loris**: 100 connections that trickle their request, a byte every 0.25 s: 50 never finish their headers,
  50 send headers with a ``Content-Length`` and trickle the body. They may hold connections, never the server's
  inference slots: every probe request is answered 200, and each slow body is answered 408 once the server's
  body timeout has passed (not left hanging, not a 500).
- **flood**: 200 concurrent streams from the grader's load client, far more than the server admits at once
  (``max_in_flight`` 16): the server must answer each of them right or refuse it with 503 + ``Retry-After`` at
  once; the probe, in the middle of it, gets the same (200, or a quick 503), never a 500, a hang or a lost reply.
- **after**: the server is live and ready, answers the probe right, and runs the same worker processes (none
  crashed under the attack).

Measured: checks failed (pass at 0).
"""
from __future__ import annotations

import json
import select
import socket
import threading
import time

import numpy as np

from ...plugin import criterion
from .harness import child_pids, load, shutdown, start_affine_pair
from .workload import affine, call

SLOW_HEADERS = 50
SLOW_BODIES = 50
TRICKLE_S = 0.25
BODY_TIMEOUT_S = 2.0
MAX_IN_FLIGHT = 16
FLOOD_STREAMS = 200
#: A probe request answered later than this, under attack, counts as not served.
PROBE_BOUND_S = 5.0


class SlowLoris:
    """Connections that trickle one byte every ``TRICKLE_S``, from one thread; records what each body sender got."""

    def __init__(self, port: int):
        self.port = port
        self.stop_event = threading.Event()
        self.answers: dict[int, bytes] = {}
        self.errors: list[str] = []
        self.thread = threading.Thread(target=self._run, daemon=True, name="slow-loris")

    def _open(self, head: bytes) -> socket.socket:
        s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        s.sendall(head)
        s.setblocking(False)
        return s

    def _run(self) -> None:
        headers, bodies = [], []
        try:
            for _ in range(SLOW_HEADERS):
                headers.append(self._open(b"POST /v2/models/affine/infer HTTP/1.1\r\nHost: x\r\n"))
            for _ in range(SLOW_BODIES):
                bodies.append(self._open(b"POST /v2/models/affine/infer HTTP/1.1\r\nHost: x\r\n"
                                         b"Content-Type: application/json\r\nContent-Length: 4000\r\n\r\n{"))
        except OSError as e:
            self.errors.append(f"could not open a slow connection: {e}")
        try:
            while not self.stop_event.wait(TRICKLE_S):
                for s in headers:
                    try:
                        s.send(b"X")  # one more byte of a header line that never ends
                    except OSError:
                        pass
                for i, s in enumerate(bodies):
                    if i in self.answers:
                        continue
                    readable, _, _ = select.select([s], [], [], 0)
                    if readable:
                        try:
                            self.answers[i] = s.recv(4096) or b"<closed>"
                        except OSError as e:
                            self.answers[i] = f"<{type(e).__name__}>".encode()
                        continue
                    try:
                        s.send(b" ")
                    except OSError:
                        pass
        finally:
            for s in headers + bodies:
                s.close()

    def __enter__(self) -> SlowLoris:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop_event.set()
        self.thread.join(10)


def _probe(port: int, n: int, gap_s: float, rng: np.random.Generator) -> list[tuple[str, float]]:
    """``n`` requests one at a time: ``(outcome, seconds)``; outcome ``ok``, ``503`` (with Retry-After) or what
    went wrong."""
    out = []
    for _ in range(n):
        x = rng.normal(size=(2, 4)).astype(np.float32)
        body = json.dumps({"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32",
                                       "data": x.ravel().tolist()}]}).encode()
        start = time.perf_counter()
        r = call(port, "POST", "/v2/models/affine/infer", body, {"Content-Type": "application/json"})
        took = time.perf_counter() - start
        if r.status == 200:
            try:
                y = np.array(r.json()["outputs"][0]["data"], np.float32).reshape(2, 3)
                outcome = "ok" if np.allclose(y, affine(x, 1), atol=1e-4) else "wrong"
            except (ValueError, KeyError, IndexError, TypeError):
                outcome = "wrong"
        elif r.status == 503 and "retry-after" in r.headers:
            outcome = "503"
        else:
            outcome = f"http {r.status}" if r.status else "lost"
        out.append((outcome, took))
        time.sleep(gap_s)
    return out


def _summary(probe: list[tuple[str, float]]) -> dict:
    counts: dict[str, int] = {}
    for o, _ in probe:
        counts[o] = counts.get(o, 0) + 1
    return {"counts": counts, "max_s": max((t for _, t in probe), default=0.0)}


@criterion("p4.server.robustness")
def test_robustness(grade, learner, quick):
    ServerThread = learner.attr("ServerThread")
    before, server = start_affine_pair(learner, "p4-server-robustness-")
    rng = np.random.default_rng(11)
    problems: list[str] = []
    details: dict = {}
    try:
        workers = child_pids(before)
        with ServerThread(server, max_in_flight=MAX_IN_FLIGHT, threads=2, body_timeout_s=BODY_TIMEOUT_S) as running:
            # 1. slow-loris
            with SlowLoris(running.port) as loris:
                time.sleep(0.5)
                probe = _probe(running.port, 30, 0.03, rng)
                end = time.monotonic() + BODY_TIMEOUT_S + 3.0
                while len(loris.answers) < SLOW_BODIES and time.monotonic() < end:
                    time.sleep(0.1)
            answers = [a.split(b"\r\n", 1)[0].decode("latin-1") for a in loris.answers.values()]
            got_408 = sum(1 for a in answers if " 408 " in f"{a} ")
            details["slow_loris"] = {"probe": _summary(probe), "slow_bodies_answered_408": got_408,
                                     "slow_body_answers": sorted(set(answers))[:5]}
            problems += loris.errors
            bad = [o for o, _ in probe if o != "ok"]
            if bad:
                problems.append(f"with {SLOW_HEADERS + SLOW_BODIES} slow clients connected, {len(bad)} of {len(probe)} "
                                f"probe requests were not answered right ({_summary(probe)['counts']}): slow clients "
                                "must not hold the server's inference slots")
            if got_408 < SLOW_BODIES:
                problems.append(f"{SLOW_BODIES - got_408} of {SLOW_BODIES} slow request bodies were not answered 408 "
                                f"within {BODY_TIMEOUT_S + 3:g} s (first answers: {sorted(set(answers))[:3]})")
            # 2. flood, with the probe in the middle of it
            flood: dict = {}
            flooder = threading.Thread(target=lambda: flood.update(load(
                running.url, "affine", streams=FLOOD_STREAMS, duration=2.0 if quick else 4.0, warmup=0.0, rows=1,
                feature="4", out_dims="3", expect="affine:1", retry=False)), daemon=True)
            flooder.start()
            time.sleep(1.0)
            probe = _probe(running.port, 20, 0.02, rng)
            flooder.join(120)
            details["flood"] = {"probe": _summary(probe), "load": flood.get("counts")}
            bad = [(o, round(t, 2)) for o, t in probe if o not in ("ok", "503") or t > PROBE_BOUND_S]
            if bad:
                problems.append(f"during a flood of {FLOOD_STREAMS} streams the probe got {bad[:5]}: each request must "
                                f"be answered right or refused with 503 + Retry-After within {PROBE_BOUND_S:g} s")
            unexpected = {k: v for k, v in (flood.get("counts") or {"no report": 1}).items() if k not in ("ok", "http 503")}
            if unexpected:
                problems.append(f"the flood's own requests got {unexpected}: only answers and 503s are allowed")
            if not (flood.get("counts") or {}).get("ok"):
                problems.append("the server answered none of the flood's requests")
            # 3. after
            live, ready = call(running.port, "GET", "/v2/health/live"), call(running.port, "GET", "/v2/health/ready")
            probe = _probe(running.port, 20, 0.0, rng)
            details["after"] = {"live": live.status, "ready": ready.status, "probe": _summary(probe)}
            if live.status != 200 or ready.status != 200:
                problems.append(f"after the attacks: live {live.status}, ready {ready.status}")
            if any(o != "ok" for o, _ in probe):
                problems.append(f"after the attacks the probe got {_summary(probe)['counts']}")
            now = child_pids(before)
            if workers and not workers <= now:
                problems.append(f"worker processes died under the attacks: {sorted(workers - now)}")
    finally:
        error = shutdown(learner, server, before)
        if error:
            problems.append(f"closing the server: {error}")
    grade.record(len(problems), details=details, message=(
        "; ".join(problems) if problems else
        f"{SLOW_HEADERS + SLOW_BODIES} slow clients: every probe request answered, every slow body 408 after "
        f"{BODY_TIMEOUT_S:g} s; a flood of {FLOOD_STREAMS} streams: {details['flood']['load']}, the probe "
        f"{details['flood']['probe']['counts']} (slowest {details['flood']['probe']['max_s']:.2f} s); the server "
        "ready and its workers alive after"))
