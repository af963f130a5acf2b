"""Task 4.12: the learner's ``InferenceServer`` behind the part's HTTP app, driven request by request.

The grader loads the ``affine`` model itself (two versions, the policy serves the newest) and hands it to the
learner's server, served on 127.0.0.1 and a free port from a thread of this process. Each row of the table is one
request and what the KServe v2 protocol says must come back: the status, a JSON body (``{"error": ...}`` for an
error), the right numbers for an inference, ``Retry-After`` on a 503. Requests are built by ``tritonclient``,
the client Triton ships, where it can build them, and by hand for the malformed ones.
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
from ...plugin import criterion
from ...submission import LearnerError
from .workload import affine, affine_repository, call, grader_models

ATOL = 1e-4
BODY_LIMIT = 2**20  # the app's max_body_bytes for this grade


def _infer_body(x: np.ndarray, binary: bool, *, name="x", datatype="FP32", outputs=None, request_id=""):
    import tritonclient.http as th

    inp = th.InferInput(name, list(x.shape), datatype)
    inp.set_data_from_numpy(x, binary_data=binary)
    outs = [th.InferRequestedOutput(o, binary_data=binary) for o in outputs] if outputs else None
    body, n = th.InferenceServerClient.generate_request_body([inp], outputs=outs, request_id=request_id)
    headers = {"Content-Type": "application/octet-stream", "Inference-Header-Content-Length": str(n)} if n else {
        "Content-Type": "application/json"}
    return body, headers


def _outputs(reply) -> dict[str, np.ndarray]:
    import tritonclient.http as th

    length = reply.headers.get("inference-header-content-length")
    result = th.InferResult.from_response_body(reply.body, header_length=int(length) if length else None)
    return {o["name"]: result.as_numpy(o["name"]) for o in result.get_response()["outputs"]}


def _is_error(reply) -> str | None:
    try:
        body = reply.json()
    except (ValueError, UnicodeDecodeError):
        return f"the body is not JSON: {reply.body[:80]!r}"
    if not isinstance(body, dict) or not isinstance(body.get("error"), str) or not body["error"]:
        return f"the body is not {{\"error\": \"...\"}}: {reply.body[:120]!r}"
    return None


def _answers(x, version, binary, request_id=""):
    def check(reply):
        try:
            out = _outputs(reply)
        except Exception as e:  # tritonclient could not read the response
            return f"tritonclient cannot read the response: {type(e).__name__}: {e}"
        if set(out) != {"y"}:
            return f"outputs {sorted(out)}, not ['y']"
        if out["y"].shape != (len(x), 3) or not np.allclose(out["y"], affine(x, version), atol=ATOL):
            return f"y is not x @ W + b of version {version} (shape {out['y'].shape})"
        if binary != ("inference-header-content-length" in reply.headers):
            return "binary output asked for but not sent as binary" if binary else "binary output not asked for"
        head = json.loads(reply.body[:int(reply.headers.get("inference-header-content-length", len(reply.body)))])
        if request_id and head.get("id") != request_id:
            return f"the response's id is {head.get('id')!r}, not the request's {request_id!r}"
        if str(head.get("model_version")) != str(version):
            return f"model_version is {head.get('model_version')!r}, not '{version}'"
        return None
    return check


def _metadata(reply):
    m = reply.json()
    want = {"name": "affine", "versions": ["3"], "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}],
            "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1, 3]}]}
    got = {k: m.get(k) for k in want}
    return None if got == want else f"metadata {got}, expected {want}"


def _table(rng) -> list[tuple]:
    """(what, method, path, body, headers, status, check) per request."""
    x3 = rng.normal(size=(3, 4)).astype(np.float32)
    x8 = rng.normal(size=(8, 4)).astype(np.float32)
    x1 = rng.normal(size=(1, 4)).astype(np.float32)
    ok_json = _infer_body(x3, False, request_id="g-3", outputs=["y"])
    ok_bin = _infer_body(x8, True, outputs=["y"])
    all_bin = (json.dumps({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": x1.ravel().tolist()}],
                           "parameters": {"binary_data_output": True}}).encode(), {"Content-Type": "application/json"})
    infer = "/v2/models/affine/infer"
    good = b'{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}'
    rows = [
        ("server live", "GET", "/v2/health/live", None, {}, 200, None),
        ("server ready", "GET", "/v2/health/ready", None, {}, 200, None),
        ("model metadata", "GET", "/v2/models/affine", None, {}, 200, _metadata),
        ("metadata of the served version", "GET", "/v2/models/affine/versions/3", None, {}, 200, _metadata),
        ("model ready", "GET", "/v2/models/affine/ready", None, {}, 200, None),
        ("metadata of a version not served", "GET", "/v2/models/affine/versions/1", None, {}, 404, _is_error),
        ("metadata of an unknown model", "GET", "/v2/models/nope", None, {}, 404, _is_error),
        ("infer, JSON tensors, request id", "POST", infer, *ok_json, 200, _answers(x3, 3, False, "g-3")),
        ("infer, binary tensors", "POST", infer, *ok_bin, 200, _answers(x8, 3, True)),
        ("infer, binary_data_output for all outputs", "POST", infer, *all_bin, 200, _answers(x1, 3, True)),
        ("infer, version in the URL", "POST", "/v2/models/affine/versions/3/infer", *ok_json, 200,
         _answers(x3, 3, False, "g-3")),
        ("infer on a version not served", "POST", "/v2/models/affine/versions/1/infer", *ok_json, 404, _is_error),
        ("infer on a version that is not a number", "POST", "/v2/models/affine/versions/v1/infer", *ok_json, 400,
         _is_error),
        ("infer on an unknown model", "POST", "/v2/models/nope/infer", good, {}, 404, _is_error),
        ("batch over max_batch_size", "POST", infer, *_infer_body(np.zeros((9, 4), np.float32), True), 400,
         _is_error),
        ("wrong shape", "POST", infer, *_infer_body(np.zeros((2, 5), np.float32), False), 400, _is_error),
        ("no batch dimension", "POST", infer, *_infer_body(np.zeros((4,), np.float32), False), 400, _is_error),
        ("wrong datatype", "POST", infer, *_infer_body(np.zeros((2, 4), np.int32), True, datatype="INT32"), 400,
         _is_error),
        ("unknown input", "POST", infer, *_infer_body(np.zeros((2, 4), np.float32), False, name="images"), 400,
         _is_error),
        ("unknown output", "POST", infer, *_infer_body(x1, False, outputs=["logits"]), 400, _is_error),
        ("malformed JSON", "POST", infer, b'{"inputs": [', {"Content-Type": "application/json"}, 400, _is_error),
        ("data shorter than the shape", "POST", infer, good.replace(b"[1, 2, 3, 4]", b"[1, 2]"), {}, 400, _is_error),
        ("binary size that does not add up", "POST", infer, ok_bin[0][:-4],
         ok_bin[1], 400, _is_error),
        ("body over the limit", "POST", infer, b" " * (BODY_LIMIT + 1024), {"Content-Type": "application/json"}, 413,
         _is_error),
    ]
    return rows


def _stubs_first(learner, server) -> None:
    """A method still a stub stops the grade with its own message (the table would show 500s for it)."""
    request = learner.attr("parse_infer_request")(json.dumps({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32",
                                                          "data": [0.0, 1.0, 2.0, 3.0]}]}).encode())
    for what, args in (("find_model", ("affine",)), ("metadata", ("affine",)), ("infer", ("affine", None, request))):
        try:
            learner.call_obj(getattr(server, what), *args, what=f"InferenceServer.{what}")
        except LearnerError as e:
            if e.not_implemented:
                raise
            return  # a bug, not a stub: the table shows it request by request


@criterion("p4.server.protocol")
def test_protocol(grade, learner):
    ServerThread = learner.attr("ServerThread")  # the part's HTTP side, as the learner's copy has it
    root = Path(tempfile.mkdtemp(prefix="p4-server-protocol-"))
    folder = affine_repository(root, versions=(1, 3))
    server = learner.call("InferenceServer", grader_models(folder, [3]))
    _stubs_first(learner, server)
    rng = np.random.default_rng()
    rows, wrong = _table(rng), []
    with ServerThread(server, max_body_bytes=BODY_LIMIT, threads=2) as running:
        for what, method, path, body, headers, status, check in rows:
            reply = call(running.port, method, path, body, headers)
            problem = None
            if reply.status != status:
                problem = f"status {reply.status}, expected {status}" + (
                    f" ({reply.body[:160].decode('utf-8', 'replace')})" if reply.body else "")
            elif check is not None:
                problem = check(reply)
            if problem:
                wrong.append(f"{what} ({method} {path}): {problem}")
        # not ready: every infer is a 503 the client may retry
        server.ready = False
        reply = call(running.port, "POST", "/v2/models/affine/infer", *_infer_body(np.ones((1, 4), np.float32), False))
        total = len(rows) + 2
        if reply.status != 503 or "retry-after" not in reply.headers:
            wrong.append(f"infer while not ready: status {reply.status}"
                         + ("" if "retry-after" in reply.headers else ", no Retry-After") + ", expected 503 + Retry-After")
        alive = call(running.port, "GET", "/v2/health/live")
        if alive.status != 200:
            wrong.append(f"after the table the server no longer answers /v2/health/live (status {alive.status})")
    details = {"requests": total, "wrong": wrong[:12]}
    if wrong:
        grade.record(len(wrong), message=f"{len(wrong)} of {total} requests answered wrong; first: {wrong[0]}",
                     details=details)
        return
    grade.record(0, message=f"all {total} requests of the v2 table answered as the protocol says", details=details)

