"""Task 4.15: ServerMetrics counts what Triton counts, in Triton's names, and the access log says what happened.

The last test sends the grader's request script to real Triton and checks that Triton's own ``/metrics`` gives the
counts the grader expects of your server (skipped, saying why, where ``make triton`` could not run).
"""
from __future__ import annotations

import json
import logging
import time

import numpy as np
import pytest

pytest.importorskip("tritonclient.http", reason="the server extra: pip install -e '.[server]'")

from graders.phase4.server.metrics_check import (  # noqa: E402
    HISTOGRAM,
    REQUEST_ID,
    TRITON_FAMILIES,
    expected_after_script,
    families,
    histogram,
    scrape,
    send_script,
    type_lines,
    value,
)
from phase4_production.server.app import ServerThread  # noqa: E402
from phase4_production.server.triton_peer import PeerError, TritonPeer, triton_available  # noqa: E402

from .impl import p4s  # noqa: E402
from .repository import affine_repository  # noqa: E402

pytestmark = pytest.mark.phase4_task15
LABELS = {"model": "affine", "version": "1"}


def _page(metrics) -> tuple[str, dict]:
    text = metrics.exposition().decode()
    return text, families(text)


def test_the_page_uses_tritons_names_and_types_with_every_series_at_zero_once_a_model_is_added():
    m = p4s.ServerMetrics()
    m.add_model("affine", "1")
    text, fams = _page(m)
    typed = type_lines(text)
    for name, (kind, labels) in TRITON_FAMILIES.items():
        assert typed.get(name) == kind, (name, typed)
        assert all(set(lab) == labels for _n, lab, _v in fams[name][1]), name
    assert "_total" not in "".join(n for n in typed if n.startswith("nv_")) and "_created" not in text
    assert value(fams, "nv_inference_request_failure", **LABELS) == 0
    assert {lab["reason"] for _n, lab, _v in fams["nv_inference_request_failure"][1]} == {
        "REJECTED", "CANCELED", "BACKEND", "OTHER"}
    assert histogram(fams, HISTOGRAM, **LABELS)[2] == 0


def test_record_request_counts_successes_and_model_failures_but_not_malformed_requests():
    m = p4s.ServerMetrics()
    m.add_model("affine", "1")
    for status in (200, 200, 400, 413, 503, 504, 500, 502):
        m.record_request("affine", "1", status=status, duration_s=0.004)
    m.record_request(None, None, status=404, duration_s=0.001)
    _, fams = _page(m)
    assert value(fams, "nv_inference_request_success", **LABELS) == 2
    assert [value(fams, "nv_inference_request_failure", **LABELS, reason=r) for r in ("REJECTED", "BACKEND", "OTHER")] \
        == [2, 1, 1]
    assert value(fams, "nv_inference_request_duration_us", **LABELS) == pytest.approx(8000)
    buckets, total, count = histogram(fams, HISTOGRAM, **LABELS)
    assert count == 2 and total == pytest.approx(0.008)
    assert dict(buckets)[0.005] == 2 and dict(buckets)[0.002] == 0  # seconds, not milliseconds
    codes = {lab["code"]: v for n, lab, v in fams["inference_lab_http_responses"][1] if n.endswith("_total")}
    assert codes == {"200": 2, "400": 1, "413": 1, "503": 1, "504": 1, "500": 1, "502": 1, "404": 1}
    assert not any(lab.get("model") not in (None, "affine") for f in fams.values() for _n, lab, _v in f[1])


def test_record_batch_counts_rows_batches_and_per_request_times_in_microseconds():
    m = p4s.ServerMetrics()
    m.add_model("affine", "1")
    m.record_batch("affine", "1", rows=6, queue_s=[0.002, 0.001, 0.0], compute_s=0.01)
    _, fams = _page(m)
    assert value(fams, "nv_inference_exec_count", **LABELS) == 1
    assert value(fams, "nv_inference_count", **LABELS) == 6
    assert value(fams, "nv_inference_queue_duration_us", **LABELS) == pytest.approx(3000)
    assert value(fams, "nv_inference_compute_infer_duration_us", **LABELS) == pytest.approx(30000)  # 3 requests


@pytest.fixture
def served(tmp_path):
    """The reference-or-yours ScaledServer with ServerMetrics on the affine model, behind HTTP, and its access log."""
    affine_repository(tmp_path)
    metrics = p4s.ServerMetrics()
    server = p4s.ScaledServer(p4s.load_repository(tmp_path), metrics=metrics).start()
    lines: list[str] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: lines.append(record.getMessage())
    logger = logging.getLogger("inference_lab.access")
    logger.addHandler(handler)
    old = logger.level
    logger.setLevel(logging.INFO)
    try:
        with ServerThread(server) as running:
            yield running, lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)
        server.close(drain=False, timeout_s=5.0)


def _settle(url: str) -> dict:
    time.sleep(0.3)  # the pool reports a batch just after it answered it
    return families(scrape(url)[1])


def test_the_graders_script_is_counted_exactly_and_logged_once_per_request(served):
    running, lines = served
    replies = send_script(running.port)
    fams = _settle(f"{running.base}/metrics")
    want = expected_after_script()
    assert value(fams, "nv_inference_request_success", **LABELS) == want["success"]
    assert value(fams, "nv_inference_count", **LABELS) == want["inferences"]
    assert value(fams, "nv_inference_exec_count", **LABELS) == want["executions"]
    assert value(fams, "nv_inference_request_failure", **LABELS, reason="REJECTED") == 3
    assert value(fams, "nv_inference_pending_request_count", **LABELS) == 0
    assert "no_such_model" not in scrape(f"{running.base}/metrics")[1]
    records = [json.loads(line) for line in lines]
    assert sorted(r["status"] for r in records) == sorted(r.status for r in replies)
    tagged = [r for r in records if r["request_id"] == REQUEST_ID]
    assert len(tagged) == 1 and tagged[0]["status"] == 200 and tagged[0]["model"] == "affine"
    assert any(r.request_id == REQUEST_ID for r in replies)  # echoed in the reply's X-Request-ID


def test_concurrent_requests_are_batched_and_counted_once_each(served):
    import tritonclient.http as th
    running, _ = served
    client = th.InferenceServerClient(running.url, concurrency=8)  # 8 requests in flight (gevent: one thread)
    pending = []
    for k in range(64):
        i = th.InferInput("x", [2, 4], "FP32")
        i.set_data_from_numpy(np.full((2, 4), k, np.float32))
        pending.append(client.async_infer("affine", [i]))
    shapes = [p.get_result().as_numpy("y").shape for p in pending]
    client.close()
    assert shapes == [(2, 3)] * 64
    fams = _settle(f"{running.base}/metrics")
    assert value(fams, "nv_inference_request_success", **LABELS) == 64
    assert value(fams, "nv_inference_count", **LABELS) == 128
    assert 16 <= value(fams, "nv_inference_exec_count", **LABELS) <= 64
    assert histogram(fams, HISTOGRAM, **LABELS)[2] == 64


def test_real_triton_counts_the_graders_script_as_the_grader_expects(tmp_path):
    """The grader's expected counts are Triton's: same script (without the course-only deadlines), Triton's page."""
    why = triton_available()
    if why:
        pytest.skip(why)
    folder = affine_repository(tmp_path)
    try:
        with TritonPeer(folder) as peer:
            replies = send_script(peer.http_port, timeouts=False)
            time.sleep(1.0)
            text = scrape(peer.metrics_url)[1]
    except PeerError as e:
        pytest.skip(f"real Triton could not start here: {e}")
    fams = families(text)
    want = expected_after_script(timeouts=False)
    assert [r.status for r in replies if r.kind == "ok"] == [200] * 5
    assert value(fams, "nv_inference_request_success", **LABELS) == want["success"]
    assert value(fams, "nv_inference_count", **LABELS) == want["inferences"]
    assert value(fams, "nv_inference_exec_count", **LABELS) == want["executions"]
    assert value(fams, "nv_inference_request_failure", **LABELS) == 0  # malformed requests are no model failure
    typed = type_lines(text)
    for name, (kind, labels) in TRITON_FAMILIES.items():
        assert typed.get(name) == kind, (name, kind)
        assert all(set(lab) == labels for _n, lab, _v in fams[name][1]), name


def test_serve_with_metrics_serves_the_page_and_logs_json_lines(tmp_path):
    """``serve --workers --metrics`` (the Dockerfile's command): /metrics counts the request, stderr has its JSON
    line; SIGTERM still drains and exits 0."""
    import signal

    from .serve_cli import first_answer, start_serve

    affine_repository(tmp_path / "repo")
    proc, port = start_serve(tmp_path / "repo", p4s.__name__.rsplit(".", 1)[-1], "--workers", "--metrics")
    try:
        assert first_answer(proc, port, np.ones((2, 4), np.float32)) is not None, f"exit code {proc.poll()}"
        time.sleep(0.3)
        fams = families(scrape(f"http://127.0.0.1:{port}/metrics")[1])
        assert value(fams, "nv_inference_request_success", **LABELS) == 1
        assert value(fams, "nv_inference_count", **LABELS) == 2
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err[-2000:]
        logged = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
        assert [r["status"] for r in logged if r.get("event") == "infer"] == [200], err[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_a_client_that_hangs_up_mid_body_is_no_failure_of_the_model(served):
    """A 499 (client closed the request), logged, counted by code, never a 500 nor a model failure."""
    import socket

    running, lines = served
    s = socket.create_connection(("127.0.0.1", running.port), timeout=10)
    s.sendall(b"POST /v2/models/affine/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{")
    time.sleep(0.2)
    s.close()
    end = time.monotonic() + 5
    while not lines and time.monotonic() < end:
        time.sleep(0.05)
    fams = _settle(f"{running.base}/metrics")
    assert [json.loads(line)["status"] for line in lines] == [499]
    assert value(fams, "nv_inference_request_failure", **LABELS) == 0
    codes = {lab["code"]: v for n, lab, v in fams["inference_lab_http_responses"][1] if n.endswith("_total")}
    assert codes == {"499": 1}
