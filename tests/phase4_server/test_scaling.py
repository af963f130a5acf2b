"""Task 4.14: the worker pool (batching, deadlines, a supervisor, a drain) and the ScaledServer behind HTTP.

The batching tests drive ``next_batch`` with no worker started; the others start real worker processes
(``workers.py``) on the tiny ``affine`` model and stop them.
"""
from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import time

import numpy as np
import pytest

tritonhttp = pytest.importorskip("tritonclient.http", reason="the server extra: pip install -e '.[server]'")

from phase4_production.server.app import ServerThread  # noqa: E402
from phase4_production.server.protocol import ProtocolError, parse_infer_request  # noqa: E402
from phase4_production.server.workers import Worker, WorkerDied  # noqa: E402

from .impl import p4s  # noqa: E402
from .repository import B, CONFIG, W, affine_repository, expected  # noqa: E402

pytestmark = pytest.mark.phase4_task14

NO_BATCHING = CONFIG.replace("dynamic_batching { max_queue_delay_microseconds: 1000 preferred_batch_size: [ 4, 8 ] }",
                             "")


def _model(tmp_path, config=CONFIG):
    affine_repository(tmp_path, config=config)
    return p4s.load_repository(tmp_path)["affine"][1]


def _open_pool(model):
    """A pool that takes requests but has no worker (next_batch is driven by the test)."""
    pool = p4s.WorkerPool(model)
    pool.accepting = True
    return pool


def _x(rows: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(rows, 4)).astype(np.float32)


def _submit(pool, rows: int, *, deadline_s: float = 30.0):
    return pool.submit({"x": _x(rows)}, rows=rows, deadline=time.monotonic() + deadline_s)


def test_batches_stop_where_the_next_request_does_not_fit_and_never_split_one(tmp_path):
    pool = _open_pool(_model(tmp_path))
    for _ in range(3):
        _submit(pool, 3)
    first = pool.next_batch()
    assert [p.rows for p in first] == [3, 3]  # 9 rows would exceed max_batch_size 8
    pool.accepting = False  # closing: what is left goes at once
    assert [p.rows for p in pool.next_batch()] == [3]
    assert pool.next_batch() is None


def test_a_preferred_size_goes_at_once_and_a_lone_request_waits_only_the_queue_delay(tmp_path):
    pool = _open_pool(_model(tmp_path))
    for _ in range(3):
        _submit(pool, 1)
    _submit(pool, 1)
    assert [p.rows for p in pool.next_batch()] == [1, 1, 1, 1]  # 4 is preferred
    _submit(pool, 2)
    start = time.monotonic()
    assert [p.rows for p in pool.next_batch()] == [2]
    assert time.monotonic() - start < 1.0  # max_queue_delay is 1 ms, not "until a batch fills"


def test_without_dynamic_batching_every_request_runs_alone(tmp_path):
    pool = _open_pool(_model(tmp_path, NO_BATCHING))
    for _ in range(3):
        _submit(pool, 2)
    assert [len(pool.next_batch()) for _ in range(3)] == [1, 1, 1]


def test_a_request_past_its_deadline_is_answered_504_and_not_run(tmp_path):
    pool = _open_pool(_model(tmp_path))
    late = _submit(pool, 1, deadline_s=-0.001)
    fresh = _submit(pool, 2)
    batch = pool.next_batch()
    assert [p.future for p in batch] == [fresh]
    with pytest.raises(ProtocolError) as e:
        late.result(0)
    assert e.value.status == 504 and "deadline" in e.value.message


def test_submit_after_close_is_a_503_the_client_may_retry(tmp_path):
    pool = p4s.WorkerPool(_model(tmp_path))
    pool.close(drain=True, timeout_s=1.0)
    with pytest.raises(ProtocolError) as e:
        _submit(pool, 1)
    assert e.value.status == 503 and e.value.retry_after_s


@pytest.fixture
def pool(tmp_path):
    pool = p4s.WorkerPool(_model(tmp_path)).start()
    yield pool
    pool.close(drain=False, timeout_s=5.0)


def test_two_instances_answer_every_request_right(pool):
    assert len(pool.worker_pids()) == 2 and os.getpid() not in pool.worker_pids()
    xs = [_x(1 + k % 3, k) for k in range(40)]
    futures = [pool.submit({"x": x}, rows=len(x), deadline=time.monotonic() + 30) for x in xs]
    for x, f in zip(xs, futures):
        np.testing.assert_allclose(f.result(30)["y"], expected(x), atol=1e-5)
    assert pool.stats()["rows"] == sum(len(x) for x in xs)


def test_a_killed_worker_loses_no_request_and_is_replaced(pool):
    victim = pool.worker_pids()[0]
    xs = [_x(2, k) for k in range(200)]
    futures = []
    for k, x in enumerate(xs):
        futures.append(pool.submit({"x": x}, rows=2, deadline=time.monotonic() + 30))
        if k == 20:
            os.kill(victim, signal.SIGKILL)
    for x, f in zip(xs, futures):
        np.testing.assert_allclose(f.result(30)["y"], expected(x), atol=1e-5)
    end = time.monotonic() + 15
    while time.monotonic() < end and (len(pool.worker_pids()) < 2 or victim in pool.worker_pids()):
        time.sleep(0.05)
    assert len(pool.worker_pids()) == 2 and victim not in pool.worker_pids()
    assert pool.stats()["restarts"] == 1


def test_a_batch_the_model_refuses_is_a_500_and_the_worker_serves_on(pool):
    bad = pool.submit({"x": np.zeros((1, 5), np.float32)}, rows=1, deadline=time.monotonic() + 30)
    with pytest.raises(ProtocolError) as e:
        bad.result(30)
    assert e.value.status == 500
    good = _x(3)
    np.testing.assert_allclose(pool.submit({"x": good}, rows=3, deadline=time.monotonic() + 30).result(30)["y"],
                               expected(good), atol=1e-5)
    assert pool.stats()["restarts"] == 0


def test_close_with_drain_answers_the_queue_then_stops_the_workers(tmp_path):
    pool = p4s.WorkerPool(_model(tmp_path)).start()
    pids = pool.worker_pids()
    xs = [_x(1, k) for k in range(60)]
    futures = [pool.submit({"x": x}, rows=1, deadline=time.monotonic() + 30) for x in xs]
    pool.close(drain=True, timeout_s=30.0)
    for x, f in zip(xs, futures):
        np.testing.assert_allclose(f.result(0)["y"], expected(x), atol=1e-5)
    assert pool.worker_pids() == []
    for pid in pids:
        assert not os.path.exists(f"/proc/{pid}") or "Z" in open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1][:3]


def test_close_without_drain_answers_what_is_queued_with_503(tmp_path):
    pool = p4s.WorkerPool(_model(tmp_path)).start()
    futures = [_submit(pool, 1) for _ in range(300)]
    pool.close(drain=False, timeout_s=10.0)
    statuses = set()
    for f in futures:
        try:
            f.result(0)
            statuses.add(200)
        except ProtocolError as e:
            statuses.add(e.status)
    assert statuses <= {200, 503} and 503 in statuses


def test_a_worker_that_cannot_load_its_model_says_so(tmp_path):
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"not an onnx file")
    with pytest.raises(WorkerDied, match="while loading"):
        Worker(bad, ["y"]).start(timeout_s=60)


def _torchscript_affine(tmp_path):
    """The affine model as TorchScript (``platform: "pytorch_libtorch"``): y = x @ W + b."""
    import warnings

    import torch

    w, b = torch.from_numpy(W), torch.from_numpy(B)

    class Affine(torch.nn.Module):
        def forward(self, x):
            return x @ w + b
    path = tmp_path / "model.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(torch.jit.trace(Affine(), torch.zeros(2, 4)), str(path))
    return path


def test_a_torchscript_model_runs_in_a_worker_with_its_inputs_in_the_config_order(tmp_path):
    worker = Worker(_torchscript_affine(tmp_path), ["y"], input_names=["x"]).start()
    try:
        x = _x(5)
        out = worker.run({"x": x}, timeout_s=30)
        assert list(out) == ["y"] and out["y"].dtype == np.float32
        np.testing.assert_allclose(out["y"], expected(x), atol=1e-5)
    finally:
        worker.stop()


@pytest.mark.parametrize("kind", ["onnx", "torchscript"])
def test_a_gpu_instance_on_a_machine_without_one_fails_its_load_and_says_why(tmp_path, kind):
    import onnxruntime as ort
    import torch

    if kind == "onnx":
        if "CUDAExecutionProvider" in ort.get_available_providers():
            pytest.skip("this ONNX Runtime has a CUDA provider")
        path = _model(tmp_path).path
        why = "no CUDAExecutionProvider"
    else:
        if torch.cuda.is_available():
            pytest.skip("this machine has a CUDA device")
        path = _torchscript_affine(tmp_path)
        why = "sees no CUDA device"
    with pytest.raises(WorkerDied, match=f"while loading .* on cuda:0 .*{why}"):
        Worker(path, ["y"], device="cuda:0", input_names=["x"]).start(timeout_s=60)


def test_instance_devices_reads_kind_count_and_gpus_as_triton_does():
    from phase4_production.server.model_config import parse_config

    def devices(groups: str) -> list[str]:
        return p4s.instance_devices(parse_config(f'name: "m" {groups}'))
    assert devices("") == ["cpu"]
    assert devices("instance_group [ { count: 2 kind: KIND_CPU } ]") == ["cpu", "cpu"]
    assert devices("instance_group [ { count: 2 kind: KIND_GPU } ]") == ["cuda", "cuda"]
    assert devices("instance_group [ { count: 2 kind: KIND_GPU gpus: [ 0, 1 ] }, { kind: KIND_CPU } ]") == [
        "cuda:0", "cuda:0", "cuda:1", "cuda:1", "cpu"]
    assert p4s.instance_count(parse_config('name: "m" instance_group [ { count: 3 kind: KIND_GPU gpus: [ 0, 1 ] } ]')) == 6


def test_a_dead_worker_is_reported_not_waited_for(tmp_path):
    model = _model(tmp_path)
    worker = Worker(model.path, ["y"]).start()
    os.kill(worker.pid, signal.SIGKILL)
    with pytest.raises(WorkerDied):
        worker.run({"x": _x(1)}, timeout_s=30)
    worker.kill()


@pytest.fixture
def scaled(tmp_path):
    affine_repository(tmp_path, versions=(1, 3))
    server = p4s.ScaledServer(p4s.load_repository(tmp_path)).start()
    yield server
    server.close(drain=False, timeout_s=5.0)


def _body(x, **parameters):
    request = {"inputs": [{"name": "x", "shape": list(x.shape), "datatype": "FP32", "data": x.ravel().tolist()}]}
    if parameters:
        request["parameters"] = parameters
    return parse_infer_request(json.dumps(request).encode())


def test_the_scaled_server_answers_through_http_as_task_12s_does(scaled):
    with ServerThread(scaled) as running:
        client = tritonhttp.InferenceServerClient(running.url)
        x = _x(5)
        inp = tritonhttp.InferInput("x", [5, 4], "FP32")
        inp.set_data_from_numpy(x, binary_data=True)
        got = client.infer("affine", [inp]).as_numpy("y")
        np.testing.assert_allclose(got, expected(x), atol=1e-5)
        wrong = tritonhttp.InferInput("z", [1, 4], "FP32")
        wrong.set_data_from_numpy(x[:1])
        with pytest.raises(Exception, match="has no input"):
            client.infer("affine", [wrong])
        client.close()


def test_the_timeout_parameter_sets_the_deadline_and_must_be_positive(scaled):
    x = _x(1)
    np.testing.assert_allclose(scaled.submit_infer("affine", None, _body(x, timeout=5_000_000)).result(30)[0][1],
                               expected(x), atol=1e-5)
    for bad in (0, -5, "soon"):
        with pytest.raises(ProtocolError) as e:
            scaled.submit_infer("affine", None, _body(x, timeout=bad))
        assert e.value.status == 400


def test_not_ready_is_a_503_before_anything_is_queued(scaled):
    scaled.ready = False
    with pytest.raises(ProtocolError) as e:
        scaled.submit_infer("affine", None, _body(_x(1)))
    assert e.value.status == 503 and e.value.retry_after_s


def test_stopping_the_http_server_under_load_answers_every_request_it_took(scaled):
    running = ServerThread(scaled).start()
    client_x = [_x(2, k) for k in range(120)]

    def send(x):
        inp = tritonhttp.InferInput("x", [2, 4], "FP32")
        inp.set_data_from_numpy(x, binary_data=True)
        c = tritonhttp.InferenceServerClient(running.url, network_timeout=30)
        try:
            return "ok" if np.allclose(c.infer("affine", [inp]).as_numpy("y"), expected(x), atol=1e-5) else "wrong"
        except Exception as e:  # noqa: BLE001 - tritonclient's exceptions carry the status in the text
            return str(e)
        finally:
            c.close()
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        futures = [ex.submit(send, x) for x in client_x[:60]]
        time.sleep(0.3)
        running.stop()
        outcomes = [f.result(60) for f in futures]
    assert "wrong" not in outcomes
    assert outcomes.count("ok") > 0
    # whatever was not answered 200 was refused (503 / no connection), never cut off mid-request
    assert all(o == "ok" or "503" in o or "onnect" in o or "refused" in o.lower() for o in outcomes), outcomes


def test_serve_with_workers_answers_and_drains_on_sigterm(tmp_path):
    """``python -m phase4_production.server serve --workers``: worker processes answer; SIGTERM (docker stop)
    drains and exits 0, leaving no worker behind."""
    from .serve_cli import first_answer, start_serve

    affine_repository(tmp_path / "repo")
    proc, port = start_serve(tmp_path / "repo", p4s.__name__.rsplit(".", 1)[-1], "--workers")
    try:
        x = _x(3)
        answer = first_answer(proc, port, x)
        assert answer is not None, f"exit code {proc.poll()}"
        got = np.array(answer["outputs"][0]["data"], np.float32).reshape(3, 3)
        np.testing.assert_allclose(got, expected(x), atol=1e-5)
        children = [c for task in os.listdir(f"/proc/{proc.pid}/task")
                    for c in open(f"/proc/{proc.pid}/task/{task}/children").read().split()]
        assert len(children) == 2  # instance_group { count: 2 }
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err[-2000:]
        assert "drained and stopped" in out, out
        assert not any(os.path.exists(f"/proc/{c}") and "Z" not in open(f"/proc/{c}/stat").read().rsplit(")", 1)[1][:3]
                       for c in children)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_slow_bodies_hold_no_inference_slot_and_get_408(scaled):
    """Clients trickling their bodies (a slow-loris) take connections, not the slots max_in_flight bounds: others
    are served meanwhile, and each slow body is answered 408 after body_timeout_s."""
    import socket
    import urllib.request

    with ServerThread(scaled, max_in_flight=2, body_timeout_s=1.0) as running:
        slow = []
        for _ in range(4):
            s = socket.create_connection(("127.0.0.1", running.port), timeout=10)
            s.sendall(b"POST /v2/models/affine/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{")
            slow.append(s)
        time.sleep(0.2)
        x = _x(2)
        body = json.dumps({"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32",
                                       "data": x.ravel().tolist()}]}).encode()
        req = urllib.request.Request(f"{running.base}/v2/models/affine/infer", data=body, method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 200
        answers = [s.recv(200).split(b"\r\n", 1)[0] for s in slow]  # after about 1 s
        for s in slow:
            s.close()
    assert answers == [b"HTTP/1.1 408 Request Timeout"] * 4
