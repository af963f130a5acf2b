"""Real Triton (nvidia-pytriton, in .venv-triton) serving a model folder: the peer the server part measures against.

Each test starts the peer on 127.0.0.1 and free ports and stops it; requests go through tritonclient, the client
Triton ships, and through this part's own codec (``protocol.py``) to check it against the real thing.
"""
from __future__ import annotations

import re
import urllib.request

import numpy as np
import pytest

from graders.harness import settled

tritonhttp = pytest.importorskip("tritonclient.http", reason="the server extra: pip install -e '.[server]'")

from phase4_production.server.protocol import HEADER_LENGTH, parse_infer_request  # noqa: E402
from phase4_production.server.triton_peer import PeerError, TritonPeer, triton_available  # noqa: E402

from .repository import affine_repository, expected  # noqa: E402

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(triton_available() is not None, reason=str(triton_available()))]


def _success_count(metrics: str, model: str) -> float:
    m = re.search(r'^nv_inference_request_success\{[^}]*model="%s"[^}]*\} (\S+)$' % model, metrics, re.M)
    assert m, metrics[:2000]
    return float(m.group(1))


def test_real_triton_serves_the_repository_and_counts_what_it_served(tmp_path):
    model = affine_repository(tmp_path, versions=(1, 2))
    rng = np.random.default_rng(0)
    with TritonPeer(model) as peer:
        assert peer.ready["version"] == "2" and peer.ready["instances"] == 2 and peer.ready["max_queue_delay_us"] == 1000
        client = tritonhttp.InferenceServerClient(peer.http_url)
        assert client.is_server_ready() and client.is_model_ready("affine")
        meta = client.get_model_metadata("affine")
        assert [(i["name"], i["datatype"], i["shape"]) for i in meta["inputs"]] == [("x", "FP32", [-1, 4])]
        sent = 0
        for n, binary in ((1, True), (3, False), (8, True)):
            x = rng.normal(size=(n, 4)).astype(np.float32)
            inp = tritonhttp.InferInput("x", [n, 4], "FP32")
            inp.set_data_from_numpy(x, binary_data=binary)
            out = client.infer("affine", [inp], outputs=[tritonhttp.InferRequestedOutput("y", binary_data=binary)])
            np.testing.assert_allclose(out.as_numpy("y"), expected(x), rtol=1e-5, atol=1e-5)
            sent += 1
        # Triton records a request's statistics as it releases the request, just after the reply went out: the
        # counter may lag the last answer by a moment (CI once read 2 of 3), so read it until it counts them all
        def counted() -> int | None:
            with urllib.request.urlopen(peer.metrics_url, timeout=5) as r:
                return _success_count(r.read().decode(), "affine")

        assert settled(counted, lambda c: c == sent, 5.0) == sent
        client.close()
    assert not peer.is_ready(), "the peer still answers after stop()"


def test_tritons_own_binary_response_parses_with_this_parts_codec(tmp_path):
    """A request body this part's codec accepts, sent raw to real Triton, answers the same as the codec reads it."""
    model = affine_repository(tmp_path)
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    inp = tritonhttp.InferInput("x", [2, 4], "FP32")
    inp.set_data_from_numpy(x, binary_data=True)
    body, n = tritonhttp.InferenceServerClient.generate_request_body(
        [inp], outputs=[tritonhttp.InferRequestedOutput("y", binary_data=True)])
    assert parse_infer_request(body, n).inputs[0].data.tolist() == x.tolist()
    with TritonPeer(model) as peer:
        req = urllib.request.Request(f"http://{peer.http_url}/v2/models/affine/infer", data=body, method="POST",
                                     headers={HEADER_LENGTH: str(n), "Content-Type": "application/octet-stream"})
        with urllib.request.urlopen(req, timeout=10) as r:
            raw, length = r.read(), int(r.headers[HEADER_LENGTH])
    got = tritonhttp.InferResult.from_response_body(raw, header_length=length).as_numpy("y")
    np.testing.assert_allclose(got, expected(x), rtol=1e-5, atol=1e-5)


def test_a_repository_real_triton_cannot_serve_is_refused_with_the_reason(tmp_path):
    model = affine_repository(tmp_path, config='name: "affine"\nmax_batch: 8\n')
    with pytest.raises(PeerError, match="max_batch"):
        TritonPeer(model, ready_timeout_s=30).start()
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "config.pbtxt").write_text('name: "empty"\n')
    with pytest.raises(PeerError, match="no version folder"):
        TritonPeer(empty, ready_timeout_s=30).start()
