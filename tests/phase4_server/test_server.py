"""Task 4.12: the v2 server on the tiny ``affine`` model, through tritonclient and raw HTTP, on 127.0.0.1.

Each test starts the server in a thread on a free port (``ServerThread``) and stops it.
"""
from __future__ import annotations

import json
import urllib.error
import urllib.request

import numpy as np
import pytest

tritonhttp = pytest.importorskip("tritonclient.http", reason="the server extra: pip install -e '.[server]'")

from phase4_production.server.app import ServerThread  # noqa: E402
from phase4_production.server.protocol import ProtocolError, parse_infer_request  # noqa: E402

from .impl import p4s  # noqa: E402
from .repository import affine_repository, expected  # noqa: E402

pytestmark = pytest.mark.phase4_task12


@pytest.fixture
def server(tmp_path):
    affine_repository(tmp_path, versions=(1, 3))
    return p4s.InferenceServer(p4s.load_repository(tmp_path))


def _request(x: np.ndarray, name="x", datatype="FP32"):
    body = json.dumps({"inputs": [{"name": name, "shape": list(x.shape), "datatype": datatype,
                                   "data": x.ravel().tolist()}]}).encode()
    return parse_infer_request(body)


def test_find_model_serves_the_newest_version_and_refuses_others_with_404(server):
    assert server.find_model("affine").version == 3 and server.find_model("affine", "3").version == 3
    for name, version, status in (("nope", None, 404), ("affine", "1", 404), ("affine", "2", 404),
                                  ("affine", "x", 400), ("affine", "0", 400)):
        with pytest.raises(ProtocolError) as e:
            server.find_model(name, version)
        assert e.value.status == status, (name, version, e.value.message)


def test_metadata_has_the_batch_dimension_and_the_served_versions(server):
    m = server.metadata("affine")
    assert m["name"] == "affine" and m["versions"] == ["3"]
    assert m["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}]
    assert m["outputs"] == [{"name": "y", "datatype": "FP32", "shape": [-1, 3]}]


@pytest.mark.parametrize("x, name, datatype, says", [
    (np.zeros((2, 5), np.float32), "x", "FP32", "shape [2, 5]"),
    (np.zeros((9, 4), np.float32), "x", "FP32", "max_batch_size = 8"),
    (np.zeros((4,), np.float32), "x", "FP32", "shape [4]"),
    (np.zeros((2, 4), np.int32), "x", "INT32", "must be FP32"),
    (np.zeros((2, 4), np.float32), "z", "FP32", "no input 'z'"),
])
def test_a_request_the_model_cannot_take_is_a_400_that_names_the_input(server, x, name, datatype, says):
    with pytest.raises(ProtocolError) as e:
        server.infer("affine", None, _request(x, name, datatype))
    assert e.value.status == 400 and says in e.value.message, e.value.message


def test_infer_runs_the_model_and_returns_what_was_asked(server):
    x = np.random.default_rng(1).normal(size=(3, 4)).astype(np.float32)
    [(name, y, binary)] = server.infer("affine", "3", _request(x))
    assert name == "y" and not binary
    np.testing.assert_allclose(y, expected(x), rtol=1e-5, atol=1e-5)
    server.ready = False
    with pytest.raises(ProtocolError) as e:
        server.infer("affine", None, _request(x))
    assert e.value.status == 503 and e.value.retry_after_s


def test_over_http_tritonclient_gets_the_right_answers_json_and_binary(server):
    rng = np.random.default_rng(2)
    with ServerThread(server) as running:
        client = tritonhttp.InferenceServerClient(running.url)
        assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("affine")
        assert client.get_model_metadata("affine")["inputs"][0]["shape"] == [-1, 4]
        for n, binary in ((1, False), (8, True)):
            x = rng.normal(size=(n, 4)).astype(np.float32)
            inp = tritonhttp.InferInput("x", [n, 4], "FP32")
            inp.set_data_from_numpy(x, binary_data=binary)
            out = client.infer("affine", [inp], outputs=[tritonhttp.InferRequestedOutput("y", binary_data=binary)],
                               request_id=f"r{n}")
            assert out.get_response()["id"] == f"r{n}"
            np.testing.assert_allclose(out.as_numpy("y"), expected(x), rtol=1e-5, atol=1e-5)
        client.close()


@pytest.mark.parametrize("path, body, status", [
    ("/v2/models/affine/infer", b"{not json", 400),
    ("/v2/models/nope/infer", b'{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1,2,3,4]}]}',
     404),
    ("/v2/models/affine/infer", b'{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1,2]}]}',
     400),
])
def test_over_http_errors_are_the_protocols_json_never_a_500(server, path, body, status):
    with ServerThread(server) as running:
        req = urllib.request.Request(running.base + path, data=body, method="POST")
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=10)
        assert e.value.code == status
        assert set(json.loads(e.value.read())) == {"error"}
