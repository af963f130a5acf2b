"""The KServe v2 wire format (``phase4_production/server/protocol.py``), checked against tritonclient's own codec.

tritonclient is the client Triton ships; what it encodes must parse here, and what is encoded here must parse in it.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

tritonhttp = pytest.importorskip("tritonclient.http", reason="the server extra: pip install -e '.[server]'")

from phase4_production.server.protocol import (  # noqa: E402
    HEADER_LENGTH,
    ProtocolError,
    datatype_of,
    encode_infer_response,
    error_body,
    parse_infer_request,
)

TENSORS = {
    "FP32": np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 7,
    "FP16": np.array([[0.5, -1.25], [3.0, 65504.0]], dtype=np.float16),
    "INT64": np.array([[-(2**40), 0, 2**40]], dtype=np.int64),
    "UINT8": np.arange(12, dtype=np.uint8).reshape(3, 4),
    "BOOL": np.array([True, False, True]),
    "BYTES": np.array([b"ab", b"", "\u00e9t\u00e9".encode()], dtype=object),
}


def client_body(arrays: dict[str, np.ndarray], binary: bool, outputs=()):
    inputs = []
    for name, a in arrays.items():
        i = tritonhttp.InferInput(name, list(a.shape), datatype_of(a))
        i.set_data_from_numpy(a, binary_data=binary)
        inputs.append(i)
    outs = [tritonhttp.InferRequestedOutput(n, binary_data=b) for n, b in outputs]
    body, json_size = tritonhttp.InferenceServerClient.generate_request_body(inputs, outputs=outs or None,
                                                                            request_id="r-1")
    return body, json_size


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_every_request_tritonclient_sends_parses_to_the_same_tensors(binary):
    body, json_size = client_body(TENSORS, binary, outputs=[("y", True), ("z", False)])
    req = parse_infer_request(body, json_size)
    assert req.id == "r-1" and [i.name for i in req.inputs] == list(TENSORS)
    for got in req.inputs:
        want = TENSORS[got.name]
        assert got.datatype == datatype_of(want) and got.shape == want.shape
        assert got.data.shape == want.shape and got.data.dtype == (want.dtype if want.dtype != object else object)
        assert got.data.tolist() == want.tolist()
    assert [(o.name, o.binary) for o in req.outputs] == [("y", True), ("z", False)]


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_every_response_encoded_here_parses_in_tritonclient(binary):
    outputs = [(n, a, binary) for n, a in TENSORS.items()]
    body, headers = encode_infer_response("digits", "1", outputs, request_id="r-9")
    assert (HEADER_LENGTH in headers) == binary
    length = int(headers[HEADER_LENGTH]) if binary else None
    result = tritonhttp.InferResult.from_response_body(body, header_length=length)
    assert result.get_response()["model_name"] == "digits" and result.get_response()["id"] == "r-9"
    for name, want in TENSORS.items():
        got = result.as_numpy(name)
        if want.dtype == object:
            got = np.array([g if isinstance(g, bytes) else str(g).encode() for g in got.ravel()], dtype=object)
        assert got.shape == want.shape and got.tolist() == want.tolist(), name


def test_a_mixed_body_keeps_each_binary_input_in_its_place():
    a, b = np.ones((1, 2), np.float32), np.full((1, 3), 7, np.int32)
    ia = tritonhttp.InferInput("a", [1, 2], "FP32")
    ia.set_data_from_numpy(a, binary_data=True)
    ij = tritonhttp.InferInput("j", [1, 3], "INT32")
    ij.set_data_from_numpy(b, binary_data=False)
    ib = tritonhttp.InferInput("b", [1, 3], "INT32")
    ib.set_data_from_numpy(b * 2, binary_data=True)
    body, n = tritonhttp.InferenceServerClient.generate_request_body([ia, ij, ib])
    req = {i.name: i.data for i in parse_infer_request(body, n).inputs}
    assert req["a"].tolist() == a.tolist() and req["j"].tolist() == b.tolist() and req["b"].tolist() == (b * 2).tolist()


def _json(obj) -> bytes:
    return json.dumps(obj).encode()


def _input(**kw):
    base = {"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [1.0, 2.0]}
    base.update(kw)
    return base


MALFORMED = [
    ("not json", b"{inputs: nope", "not valid JSON"),
    ("not an object", _json([1, 2]), "JSON object"),
    ("no inputs", _json({"inputs": []}), "non-empty 'inputs'"),
    ("no name", _json({"inputs": [{"shape": [1], "datatype": "FP32", "data": [1]}]}), "needs a 'name'"),
    ("unknown datatype", _json({"inputs": [_input(datatype="FLOAT")]}), "unknown datatype 'FLOAT'"),
    ("bf16", _json({"inputs": [_input(datatype="BF16")]}), "BF16"),
    ("shape not a list", _json({"inputs": [_input(shape="1,2")]}), "'shape' must be a list"),
    ("negative dim", _json({"inputs": [_input(shape=[-1, 2])]}), "negative dimension"),
    ("too few values", _json({"inputs": [_input(shape=[2, 2])]}), "holds 4 elements; 'data' has 2"),
    ("strings as FP32", _json({"inputs": [_input(data=["1", "2"])]}), "must be numbers"),
    ("floats as INT32", _json({"inputs": [_input(datatype="INT32", data=[1.5, 2])]}), "must be integers"),
    ("INT8 overflow", _json({"inputs": [_input(datatype="INT8", data=[1, 300])]}), "does not fit INT8"),
    ("no data", _json({"inputs": [{"name": "x", "shape": [1], "datatype": "FP32"}]}), "neither 'data'"),
    ("twice", _json({"inputs": [_input(), _input()]}), "appears twice"),
    ("bad output", _json({"inputs": [_input()], "outputs": [{"nom": "y"}]}), "outputs[0] needs a 'name'"),
]


@pytest.mark.parametrize("body, says", [(b, s) for _, b, s in MALFORMED], ids=[c for c, _, _ in MALFORMED])
def test_a_malformed_json_request_is_a_400_that_says_what_is_wrong(body, says):
    with pytest.raises(ProtocolError) as e:
        parse_infer_request(body)
    assert e.value.status == 400 and says in e.value.message, e.value.message


def _binary(size_claimed: int, payload: bytes, header_length_delta: int = 0):
    head = _json({"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32",
                              "parameters": {"binary_data_size": size_claimed}}]})
    return head + payload, len(head) + header_length_delta


@pytest.mark.parametrize("size, payload, delta, says", [
    (8, b"\0" * 4, 0, "runs past the end"),
    (4, b"\0" * 4, 0, "needs 8 bytes; binary_data_size is 4"),
    (8, b"\0" * 12, 0, "4 bytes after the JSON"),
    (8, b"\0" * 8, 100, "Inference-Header-Content-Length is"),
    (8, b"\0" * 8, -3, "not valid JSON"),
])
def test_binary_sizes_that_do_not_add_up_are_a_400(size, payload, delta, says):
    body, n = _binary(size, payload, delta)
    with pytest.raises(ProtocolError) as e:
        parse_infer_request(body, n)
    assert e.value.status == 400 and says in e.value.message, e.value.message


def test_a_body_over_the_limit_is_a_413_before_it_is_parsed():
    with pytest.raises(ProtocolError) as e:
        parse_infer_request(b"x" * 1001, max_bytes=1000)
    assert e.value.status == 413 and "1000" in e.value.message


def test_a_binary_input_is_read_without_a_copy_and_the_error_body_is_the_protocols():
    body, n = client_body({"x": TENSORS["FP32"]}, True)
    x = parse_infer_request(body, n).inputs[0].data
    assert not x.flags.owndata and not x.flags.writeable
    assert json.loads(error_body("no model 'x'")) == {"error": "no model 'x'"}
