"""The KServe v2 (Open Inference Protocol) wire format over HTTP (helpers, written in full).

Triton, KServe, Seldon MLServer, TorchServe and OpenVINO Model Server all speak it; so does the server you write
in this part. This module turns bytes into tensors and back; what a server *does* with a request (which model,
which checks, which status) is yours. It needs only the standard library and numpy.

**Endpoints** (all JSON; an error is ``{"error": "<message>"}`` with the status below)::

    GET  /v2/health/live                           200 while the process serves
    GET  /v2/health/ready                          200 once every model is ready, else 503
    GET  /v2/models/<model>[/versions/<v>]         model metadata
    GET  /v2/models/<model>[/versions/<v>]/ready   200 / 404 / 503
    POST /v2/models/<model>[/versions/<v>]/infer   inference

**An inference request** is a JSON object; each input carries its tensor either as JSON ``data`` (row-major, flat
or nested lists) or, with Triton's *binary tensor extension*, as raw little-endian bytes after the JSON::

    {"id": "42",
     "inputs": [{"name": "images", "shape": [2, 3, 32, 32], "datatype": "FP32",
                 "parameters": {"binary_data_size": 24576}}],
     "outputs": [{"name": "logits", "parameters": {"binary_data": true}}]}

With binary data the HTTP body is ``<JSON><input 0 bytes><input 1 bytes>...`` (in the order of ``inputs``) and the
header ``Inference-Header-Content-Length`` gives the JSON's length in bytes. A response is built the same way:
outputs asked for as binary (or all of them, with the request parameter ``binary_data_output: true``) follow the
JSON as bytes, with ``binary_data_size`` in their parameters.

**Errors** the protocol specifies, raised here as :class:`ProtocolError` with their HTTP status: 400 for a body
that is not a valid request (malformed JSON, a missing field, an unknown datatype, a shape that does not match
the data, binary sizes that do not add up), 413 for a body over the server's limit. 404 (unknown model) and 503
(not ready, overloaded, with ``Retry-After``) are the server's to decide.

Reference: https://kserve.github.io/website/latest/modelserving/data_plane/v2_protocol/ and Triton's
``docs/protocol/extension_binary_data.md``.
"""
from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["HEADER_LENGTH", "DATATYPES", "ProtocolError", "RequestedInput", "RequestedOutput", "InferRequest",
           "datatype_of", "parse_infer_request", "encode_infer_response", "error_body", "serialize_bytes_tensor",
           "deserialize_bytes_tensor"]

#: The HTTP header that carries the JSON part's length when binary tensors follow it.
HEADER_LENGTH = "Inference-Header-Content-Length"

#: v2 datatype -> numpy dtype (little-endian). BYTES tensors are numpy ``object`` arrays of ``bytes``. BF16 has no
#: numpy dtype and is refused (400) by :func:`parse_infer_request`.
DATATYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_), "UINT8": np.dtype("<u1"), "UINT16": np.dtype("<u2"), "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"), "INT8": np.dtype("<i1"), "INT16": np.dtype("<i2"), "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"), "FP16": np.dtype("<f2"), "FP32": np.dtype("<f4"), "FP64": np.dtype("<f8"),
    "BYTES": np.dtype(object),
}
_BY_KIND = {(v.kind, v.itemsize): k for k, v in DATATYPES.items() if k != "BYTES"}


class ProtocolError(Exception):
    """A request the protocol refuses, with the HTTP status to answer and the message for the ``error`` field.

    Attributes:
        status: HTTP status (400 malformed, 404 unknown model, 413 too large, 503 unavailable, ...).
        message: one sentence a client can act on.
        retry_after_s: for 503: seconds the client should wait (sent as ``Retry-After``), else None.
    """

    def __init__(self, status: int, message: str, retry_after_s: float | None = None):
        super().__init__(message)
        self.status, self.message, self.retry_after_s = status, message, retry_after_s


@dataclass
class RequestedInput:
    """One input tensor of a request: ``data`` has dtype ``DATATYPES[datatype]`` and shape ``shape``."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    data: np.ndarray
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass
class RequestedOutput:
    """An output the client asked for by name; ``binary``: send it as raw bytes after the JSON."""

    name: str
    binary: bool = False


@dataclass
class InferRequest:
    """A parsed inference request.

    Attributes:
        id: the client's request id ("" when none); echoed in the response.
        inputs: in the request's order, names unique.
        outputs: the outputs asked for (empty = all of the model's outputs).
        binary_output: the request parameter ``binary_data_output`` (default for outputs not listed).
        parameters: the request's other parameters, as sent.
    """

    id: str
    inputs: list[RequestedInput]
    outputs: list[RequestedOutput]
    binary_output: bool = False
    parameters: dict[str, Any] = field(default_factory=dict)


def datatype_of(array: np.ndarray) -> str:
    """The v2 datatype of a numpy array (``object`` arrays are BYTES). Raises ValueError for other dtypes."""
    if array.dtype == object:
        return "BYTES"
    try:
        return _BY_KIND[(array.dtype.kind, array.dtype.itemsize)]
    except KeyError:
        raise ValueError(f"no v2 datatype for numpy dtype {array.dtype}") from None


def serialize_bytes_tensor(array: np.ndarray) -> bytes:
    """BYTES tensor -> the binary extension's layout: each element as a 4-byte little-endian length + its bytes."""
    out = bytearray()
    for item in array.reshape(-1):
        b = item.encode("utf-8") if isinstance(item, str) else bytes(item)
        out += struct.pack("<I", len(b)) + b
    return bytes(out)


def deserialize_bytes_tensor(raw: bytes, count: int) -> np.ndarray:
    """The inverse of :func:`serialize_bytes_tensor`: ``count`` elements, a 1-D object array of ``bytes``.

    Raises ProtocolError(400) when the bytes do not hold exactly ``count`` length-prefixed elements.
    """
    items, pos = [], 0
    for _ in range(count):
        if pos + 4 > len(raw):
            raise ProtocolError(400, f"BYTES tensor data ends after {len(items)} of {count} elements")
        (n,) = struct.unpack_from("<I", raw, pos)
        if pos + 4 + n > len(raw):
            raise ProtocolError(400, f"BYTES element {len(items)} claims {n} bytes; only {len(raw) - pos - 4} follow")
        items.append(raw[pos + 4:pos + 4 + n])
        pos += 4 + n
    if pos != len(raw):
        raise ProtocolError(400, f"BYTES tensor data has {len(raw) - pos} bytes after its {count} elements")
    arr = np.empty(count, dtype=object)
    arr[:] = items
    return arr


def _require(cond: bool, message: str) -> None:
    if not cond:
        raise ProtocolError(400, message)


def _shape(spec: dict, where: str) -> tuple[int, ...]:
    shape = spec.get("shape")
    _require(isinstance(shape, list) and all(isinstance(d, int) and not isinstance(d, bool) for d in shape),
             f"{where}: 'shape' must be a list of integers, got {shape!r}")
    _require(all(d >= 0 for d in shape), f"{where}: 'shape' {shape} has a negative dimension")
    return tuple(shape)


def _json_tensor(data: Any, datatype: str, shape: tuple[int, ...], where: str) -> np.ndarray:
    count = math.prod(shape)
    if datatype == "BYTES":
        flat = list(_flatten(data, where))
        _require(all(isinstance(x, str) for x in flat), f"{where}: BYTES data must be strings")
        _require(len(flat) == count, f"{where}: shape {list(shape)} holds {count} elements; 'data' has {len(flat)}")
        arr = np.empty(count, dtype=object)
        arr[:] = [x.encode("utf-8") for x in flat]
        return arr.reshape(shape)
    flat = list(_flatten(data, where))
    _require(len(flat) == count, f"{where}: shape {list(shape)} holds {count} elements; 'data' has {len(flat)}")
    if datatype == "BOOL":
        _require(all(isinstance(x, bool) for x in flat), f"{where}: BOOL data must be true/false")
    else:
        _require(all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in flat),
                 f"{where}: {datatype} data must be numbers")
        if DATATYPES[datatype].kind in "iu":
            _require(all(float(x).is_integer() for x in flat), f"{where}: {datatype} data must be integers")
    try:
        return np.asarray(flat, dtype=DATATYPES[datatype]).reshape(shape)
    except (OverflowError, ValueError) as e:
        raise ProtocolError(400, f"{where}: data does not fit {datatype}: {e}") from None


def _flatten(data: Any, where: str):
    if isinstance(data, list):
        for x in data:
            yield from _flatten(x, where)
    elif isinstance(data, (int, float, str, bool)):
        yield data
    else:
        raise ProtocolError(400, f"{where}: 'data' must be a (nested) list of values, found {type(data).__name__}")


def parse_infer_request(body: bytes, header_length: int | None = None, *, max_bytes: int | None = None) -> InferRequest:
    """Parse the body of ``POST .../infer``.

    Args:
        body: the whole HTTP body.
        header_length: the ``Inference-Header-Content-Length`` header as an int (None when absent: the body is
            all JSON and no input may be binary).
        max_bytes: the server's body limit; a longer body raises ProtocolError(413).

    Returns:
        An :class:`InferRequest`; each input's ``data`` is a numpy array of its datatype and shape (a view into
        ``body`` for binary inputs: copy it before keeping it past the request).

    Raises:
        ProtocolError: 400 with a message naming the input and the problem, or 413.
    """
    if max_bytes is not None and len(body) > max_bytes:
        raise ProtocolError(413, f"request body of {len(body)} bytes is over this server's limit of {max_bytes}")
    if header_length is None:
        header_length = len(body)
    _require(0 < header_length <= len(body),
             f"{HEADER_LENGTH} is {header_length} but the body has {len(body)} bytes")
    try:
        head = json.loads(body[:header_length])
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ProtocolError(400, f"the request is not valid JSON: {e}") from None
    _require(isinstance(head, dict), "the request must be a JSON object")
    inputs = head.get("inputs")
    _require(isinstance(inputs, list) and len(inputs) > 0, "the request needs a non-empty 'inputs' list")
    rid = head.get("id", "")
    _require(isinstance(rid, str), "'id' must be a string")
    params = head.get("parameters", {})
    _require(isinstance(params, dict), "'parameters' must be an object")
    binary_output = params.get("binary_data_output", False)
    _require(isinstance(binary_output, bool), "parameter 'binary_data_output' must be true or false")

    raw = memoryview(body)[header_length:]
    offset, parsed, names = 0, [], set()
    for k, spec in enumerate(inputs):
        _require(isinstance(spec, dict), f"inputs[{k}] must be an object")
        name = spec.get("name")
        _require(isinstance(name, str) and name != "", f"inputs[{k}] needs a 'name'")
        where = f"input '{name}'"
        _require(name not in names, f"{where} appears twice")
        names.add(name)
        datatype = spec.get("datatype")
        _require(isinstance(datatype, str), f"{where} needs a 'datatype'")
        _require(datatype != "BF16", f"{where}: BF16 is not served here (no numpy dtype); send FP32 or FP16")
        _require(datatype in DATATYPES, f"{where}: unknown datatype {datatype!r} (one of {', '.join(DATATYPES)})")
        shape = _shape(spec, where)
        p = spec.get("parameters", {})
        _require(isinstance(p, dict), f"{where}: 'parameters' must be an object")
        size = p.get("binary_data_size")
        if size is None:
            _require("data" in spec, f"{where} has neither 'data' nor parameters.binary_data_size")
            data = _json_tensor(spec["data"], datatype, shape, where)
        else:
            _require("data" not in spec, f"{where} has both 'data' and parameters.binary_data_size")
            _require(isinstance(size, int) and not isinstance(size, bool) and size >= 0,
                     f"{where}: binary_data_size must be a non-negative integer")
            _require(offset + size <= len(raw), f"{where}: binary_data_size {size} runs past the end of the body "
                     f"({len(raw) - offset} bytes left)")
            chunk = raw[offset:offset + size]
            offset += size
            count = math.prod(shape)
            if datatype == "BYTES":
                data = deserialize_bytes_tensor(bytes(chunk), count).reshape(shape)
            else:
                dt = DATATYPES[datatype]
                _require(size == count * dt.itemsize, f"{where}: shape {list(shape)} of {datatype} needs "
                         f"{count * dt.itemsize} bytes; binary_data_size is {size}")
                data = np.frombuffer(chunk, dtype=dt).reshape(shape)
        parsed.append(RequestedInput(name, datatype, shape, data, {k: v for k, v in p.items()
                                                                   if k != "binary_data_size"}))
    _require(offset == len(raw), f"{len(raw) - offset} bytes after the JSON are not claimed by any input's "
             "binary_data_size")

    outputs = head.get("outputs", [])
    _require(isinstance(outputs, list), "'outputs' must be a list")
    wanted = []
    for k, spec in enumerate(outputs):
        _require(isinstance(spec, dict) and isinstance(spec.get("name"), str), f"outputs[{k}] needs a 'name'")
        p = spec.get("parameters", {})
        _require(isinstance(p, dict), f"output '{spec['name']}': 'parameters' must be an object")
        binary = p.get("binary_data", binary_output)
        _require(isinstance(binary, bool), f"output '{spec['name']}': binary_data must be true or false")
        wanted.append(RequestedOutput(spec["name"], binary))
    return InferRequest(rid, parsed, wanted, binary_output, {k: v for k, v in params.items()
                                                               if k != "binary_data_output"})


def encode_infer_response(model_name: str, model_version: str, outputs: list[tuple[str, np.ndarray, bool]],
                          request_id: str = "") -> tuple[bytes, dict[str, str]]:
    """Build the body and headers of an inference response.

    Args:
        model_name, model_version: echoed in the response (``model_version`` as a string, e.g. "1").
        outputs: ``(name, array, binary)`` per output, in the order to send; ``binary`` puts the tensor after the
            JSON as raw bytes instead of in ``data``.
        request_id: the request's ``id`` ("" = omit).

    Returns:
        ``(body, headers)``: headers hold ``Content-Type`` and, when any output is binary, ``HEADER_LENGTH``.
    """
    meta, blobs = [], []
    for name, array, binary in outputs:
        array = np.asarray(array)
        dt = datatype_of(array)
        entry: dict[str, Any] = {"name": name, "datatype": dt, "shape": list(array.shape)}
        if binary:
            blob = serialize_bytes_tensor(array) if dt == "BYTES" else np.ascontiguousarray(
                array, dtype=DATATYPES[dt]).tobytes()
            entry["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        elif dt == "BYTES":
            entry["data"] = [b.decode("utf-8", "replace") if isinstance(b, bytes) else str(b) for b in array.ravel()]
        else:
            entry["data"] = array.ravel().tolist()
        meta.append(entry)
    head: dict[str, Any] = {"model_name": model_name, "model_version": model_version, "outputs": meta}
    if request_id:
        head["id"] = request_id
    text = json.dumps(head, separators=(",", ":"), allow_nan=True).encode("utf-8")
    if not blobs:
        return text, {"Content-Type": "application/json"}
    return text + b"".join(blobs), {"Content-Type": "application/octet-stream", HEADER_LENGTH: str(len(text))}


def error_body(message: str) -> bytes:
    """The protocol's error body: ``{"error": message}`` as UTF-8 JSON."""
    return json.dumps({"error": message}).encode("utf-8")
