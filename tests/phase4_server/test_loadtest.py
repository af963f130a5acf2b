"""Task 4.16: the load tool against servers whose behaviour is known: the course's own server (503 + Retry-After when
over ``max_in_flight``), the grader's planned server (every outcome, logged), a closed port, a server slower than the
timeout, and real Triton. Every server binds to 127.0.0.1 on a free port and is stopped by the test; every run lasts
at most a few seconds."""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from aiohttp import web

pytest.importorskip("tritonclient.http", reason="the server extra: pip install -e '.[server]'")

from phase4_production.server.app import ServerThread  # noqa: E402
from phase4_production.server.triton_peer import PeerError, TritonPeer, free_port, triton_available  # noqa: E402

from .impl import p4s  # noqa: E402
from .repository import affine_repository, expected  # noqa: E402

pytestmark = pytest.mark.phase4_task16

ROOT = Path(__file__).resolve().parents[2]
PLANNED = ROOT / "graders" / "phase4" / "server" / "plannedserver.py"
INPUTS = [np.random.default_rng(i).normal(size=(2, 4)).astype(np.float32) for i in range(6)]
AFFINE = {"input_name": "x", "output_name": "y", "output_dims": (3,)}


def _right(i: int, y: np.ndarray) -> bool:
    return bool(np.allclose(y, expected(INPUTS[i]), atol=1e-5))


@pytest.fixture
def affine_server(tmp_path):
    affine_repository(tmp_path)
    server = p4s.InferenceServer(p4s.load_repository(tmp_path))
    with ServerThread(server, threads=2, max_in_flight=4) as running:
        yield running


@pytest.fixture
def planned_server():
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(PLANNED), "--port", str(port)], stdout=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/ready", timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def test_every_request_of_a_run_is_one_record_with_its_outcome_and_the_503s_are_retried(affine_server):
    t0, records = p4s.run_load(affine_server.url, "affine", INPUTS, streams=12, duration_s=0.8, warmup_s=0.2,
                               timeout_s=5, check=_right, **AFFINE)
    outcomes = {r.outcome for r in records}
    assert outcomes <= {"ok", "http 503"}, outcomes   # max_in_flight 4 of 12 streams: overload answered, no error
    assert sum(r.outcome == "ok" for r in records) > 20
    assert any(r.retries for r in records), "12 streams against max_in_flight 4: some 503s, retried once"
    assert all(0 <= r.start_s <= r.end_s for r in records) and t0 <= time.monotonic()
    assert max(r.start_s for r in records) <= 1.0 + 0.05   # nothing new after warm-up + duration
    assert all(0 <= r.input_index < len(INPUTS) for r in records)


def test_a_wrong_answer_is_wrong_not_ok(affine_server):
    _, records = p4s.run_load(affine_server.url, "affine", INPUTS, streams=2, duration_s=0.3, warmup_s=0.0,
                              timeout_s=5, check=lambda i, y: False, **AFFINE)
    assert records and {r.outcome for r in records} <= {"wrong", "http 503"}
    _, records = p4s.run_load(affine_server.url, "affine", INPUTS, streams=2, duration_s=0.3, warmup_s=0.0,
                              timeout_s=5, input_name="x", output_name="y", output_dims=(7,))
    assert {r.outcome for r in records} <= {"wrong", "http 503"}   # the shape decides without a check


def test_the_records_count_exactly_what_the_planned_server_logged(planned_server):
    port = planned_server
    t0, records = p4s.run_load(f"127.0.0.1:{port}", "planned", INPUTS, streams=30, duration_s=1.0, warmup_s=0.2,
                               timeout_s=5, input_name="x", output_name="y", output_dims=(4,),
                               check=lambda i, y: bool(np.allclose(y, 2 * INPUTS[i] + 1, atol=1e-5)))
    time.sleep(0.2)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/log", timeout=5) as r:
        log = json.loads(r.read())
    kinds: dict[str, int] = {}
    for _, _, kind in log["requests"]:
        kinds[kind] = kinds.get(kind, 0) + 1
    mine: dict[str, int] = {}
    for rec in records:
        mine[rec.outcome] = mine.get(rec.outcome, 0) + 1
    retries = sum(r.retries for r in records)
    assert len(records) + retries == len(log["requests"])
    assert (mine.get("ok", 0), mine.get("wrong", 0), mine.get("http 500", 0), mine.get("lost", 0)) == \
           (kinds.get("ok", 0), kinds.get("wrong", 0), kinds.get("500", 0), kinds.get("cut", 0))
    assert retries + mine.get("http 503", 0) == kinds.get("503", 0)
    assert kinds.get("cut", 0) > 0 and kinds.get("503", 0) > 0   # the plan reached every kind
    assert log["peak_in_flight"] <= 30


def test_a_closed_port_is_refused_and_the_streams_back_off():
    port = free_port()   # nothing listens
    t = time.monotonic()
    _, records = p4s.run_load(f"127.0.0.1:{port}", "affine", INPUTS, streams=4, duration_s=0.5, warmup_s=0.0,
                              timeout_s=2, **AFFINE)
    assert {r.outcome for r in records} == {"refused"}
    assert len(records) <= 4 * (0.5 / 0.05 + 2), "a refused stream waits 50 ms before its next request"
    assert time.monotonic() - t < 3


def test_a_reply_slower_than_the_timeout_is_lost():
    async def slow(request):
        await request.read()
        await asyncio.sleep(1.0)
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/v2/models/slow/infer", slow)
    port = free_port()
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        _, records = p4s.run_load(f"127.0.0.1:{port}", "slow", INPUTS, streams=3, duration_s=0.1, warmup_s=0.0,
                                  timeout_s=0.3, **AFFINE)
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
    assert records and {r.outcome for r in records} == {"lost"}
    assert all(0.25 <= r.end_s - r.start_s < 0.9 for r in records)


def _rec(a, b, outcome="ok", retries=0):
    return p4s.RequestRecord(a, b, outcome, retries, 0)


def test_summarize_counts_what_started_in_the_window_and_times_only_first_tries():
    records = [_rec(0.5, 0.6),                                  # warm-up
               _rec(1.0, 1.1), _rec(1.5, 1.8), _rec(1.6, 2.6, retries=1),   # retried: ok, no latency
               _rec(2.0, 2.05, "http 500"), _rec(2.8, 3.4),     # ended after the window: no throughput
               _rec(3.5, 3.6)]                                   # after the window
    rep = p4s.summarize_load(records, streams=4, rows=3, warmup_s=1.0, duration_s=2.0)
    assert rep.requests == 5 and rep.counts == {"ok": 4, "http 500": 1} and rep.retried == 1
    assert rep.requests_per_s == pytest.approx(3 / 2.0) and rep.frames_per_s == pytest.approx(9 / 2.0)
    assert rep.p50_ms == pytest.approx(float(np.percentile([100.0, 300.0, 600.0], 50)))
    assert rep.p99_ms == pytest.approx(float(np.percentile([100.0, 300.0, 600.0], 99)))
    assert rep.availability == pytest.approx(4 / 5)
    assert "errors: http 500: 1" in rep.summary()
    empty = p4s.summarize_load([], streams=1, rows=1, warmup_s=0.0, duration_s=1.0)
    assert empty.requests == 0 and empty.p50_ms is None and empty.availability == 1.0
    with pytest.raises(ValueError):
        p4s.summarize_load(records, streams=1, rows=1, warmup_s=0.0, duration_s=0.0)


def test_the_availability_timeline_buckets_by_end_and_keeps_quiet_windows():
    records = [_rec(0.0, 0.2), _rec(0.1, 0.7, "lost"), _rec(0.3, 0.9), _rec(2.0, 2.5, "http 503")]
    assert p4s.availability_timeline(records, window_s=0.5) == [
        (0.0, 1.0, 1), (0.5, 0.5, 2), (1.0, 1.0, 0), (1.5, 1.0, 0), (2.0, 1.0, 0), (2.5, 0.0, 1)]
    assert p4s.availability_timeline([], window_s=1.0) == []
    with pytest.raises(ValueError):
        p4s.availability_timeline(records, window_s=0)


def test_bad_arguments_are_refused_before_anything_is_sent():
    with pytest.raises(ValueError):
        p4s.run_load("127.0.0.1:9", "affine", INPUTS, streams=0, duration_s=1)
    with pytest.raises(ValueError):
        p4s.run_load("127.0.0.1:9", "affine", [], streams=1, duration_s=1)


def test_the_command_line_drives_a_server_and_writes_its_report(affine_server, tmp_path, capsys):
    from phase4_production.server.cli import main

    out = tmp_path / "load.json"
    code = main(["load", "--url", affine_server.url, "--model", "affine", "--streams", "3", "--duration", "0.3",
                 "--warmup", "0", "--rows", "2", "--json", str(out)])
    text = capsys.readouterr().out
    # The digits input shape against the affine model: every request is a 400, which the report names.
    assert code == 1 and "http 400" in text
    saved = json.loads(out.read_text())
    assert saved["report"]["streams"] == 3 and saved["records"]


def test_the_same_tool_measures_real_triton(tmp_path):
    why = triton_available()
    if why:
        pytest.skip(why)
    folder = affine_repository(tmp_path)
    try:
        with TritonPeer(folder) as peer:
            _, records = p4s.run_load(peer.http_url, "affine", INPUTS, streams=20, duration_s=1.0, warmup_s=0.2,
                                      timeout_s=10, check=_right, **AFFINE)
    except PeerError as e:
        pytest.skip(f"real Triton could not start here: {e}")
    rep = p4s.summarize_load(records, streams=20, rows=2, warmup_s=0.2, duration_s=1.0)
    assert rep.counts.get("ok", 0) == rep.requests > 20 and rep.p50_ms is not None
