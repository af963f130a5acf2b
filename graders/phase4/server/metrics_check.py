"""What ``p4.server.metrics`` sends and reads: a fixed script of inference requests and Triton's metric families.

The script's expected counts are Triton's own: ``tests/phase4_server/test_metrics.py`` sends the same script to real
Triton (PyTriton) and reads the same numbers from its ``/metrics`` (a malformed request is no failure of the model;
a batch of n rows counts n inferences). Only the requests with a 1 us ``timeout`` are the course's: Triton takes a
request's ``timeout`` only where the model's queue policy allows it, the course's server always does.
"""
from __future__ import annotations

import json
import time
import urllib.request
from dataclasses import dataclass

import numpy as np

from .workload import call

__all__ = ["TRITON_FAMILIES", "ScriptReply", "script", "send_script", "expected_after_script", "scrape", "value",
           "histogram", "unknown_series"]

#: Triton's per-model families the course's server must expose: name -> (type, label names).
TRITON_FAMILIES = {
    "nv_inference_request_success": ("counter", {"model", "version"}),
    "nv_inference_request_failure": ("counter", {"model", "version", "reason"}),
    "nv_inference_count": ("counter", {"model", "version"}),
    "nv_inference_exec_count": ("counter", {"model", "version"}),
    "nv_inference_request_duration_us": ("counter", {"model", "version"}),
    "nv_inference_queue_duration_us": ("counter", {"model", "version"}),
    "nv_inference_compute_infer_duration_us": ("counter", {"model", "version"}),
    "nv_inference_pending_request_count": ("gauge", {"model", "version"}),
}
HISTOGRAM = "inference_lab_request_duration_seconds"
RESPONSES = "inference_lab_http_responses_total"
REASONS = ("REJECTED", "CANCELED", "BACKEND", "OTHER")
REQUEST_ID = "grader-request-7"


@dataclass
class ScriptReply:
    kind: str
    status: int
    latency_s: float
    rows: int
    request_id: str | None


def _json_body(x: np.ndarray, datatype: str = "FP32", params: dict | None = None) -> bytes:
    body = {"inputs": [{"name": "x", "shape": list(x.shape), "datatype": datatype, "data": x.ravel().tolist()}]}
    if params:
        body["parameters"] = params
    return json.dumps(body).encode()


def script(*, timeouts: bool = True) -> list[tuple[str, str, bytes, int, dict]]:
    """``(kind, model, body, rows, headers)`` in order: 5 good requests of 1, 2, 3, 4 and 8 rows (18 rows), a wrong
    shape, a wrong dtype, malformed JSON, 2 to an unknown model and (``timeouts``) 3 whose 1 us deadline passes in
    the queue."""
    rng = np.random.default_rng(7)
    rows = [1, 2, 3, 4, 8]
    out = [("ok", "affine", _json_body(rng.normal(size=(n, 4)).astype(np.float32)), n,
            {"X-Request-ID": REQUEST_ID} if i == 2 else {}) for i, n in enumerate(rows)]
    out += [("bad shape", "affine", _json_body(np.ones((1, 5), np.float32)), 0, {}),
            ("bad dtype", "affine", _json_body(np.ones((1, 4), np.int32), "INT32"), 0, {}),
            ("bad json", "affine", b'{"inputs": [', 0, {}),
            ("unknown model", "no_such_model", _json_body(np.ones((1, 4), np.float32)), 0, {}),
            ("unknown model", "no_such_model_2", _json_body(np.ones((1, 4), np.float32)), 0, {})]
    if timeouts:
        out += [("deadline", "affine", _json_body(np.ones((2, 4), np.float32), params={"timeout": 1}), 0, {})
                for _ in range(3)]
    return out


def send_script(port: int, *, timeouts: bool = True) -> list[ScriptReply]:
    """Send :func:`script` one request at a time (each answered before the next) and time each, seconds."""
    replies = []
    for kind, model, body, rows, headers in script(timeouts=timeouts):
        start = time.perf_counter()
        r = call(port, "POST", f"/v2/models/{model}/infer", body, {"Content-Type": "application/json", **headers})
        replies.append(ScriptReply(kind, r.status, time.perf_counter() - start, rows, r.headers.get("x-request-id")))
    return replies


def expected_after_script(*, timeouts: bool = True) -> dict:
    """What ``/metrics`` says after :func:`script` on a fresh server (Triton's counting)."""
    return {"success": 5, "inferences": 18, "executions": 5, "failure": {"REJECTED": 3 if timeouts else 0},
            "responses": {"200": 5, "400": 3, "404": 2, **({"504": 3} if timeouts else {})}}


def scrape(url: str) -> tuple[str, str]:
    """``(content type, body)`` of ``GET url`` (the ``/metrics`` page)."""
    with urllib.request.urlopen(url, timeout=20) as r:
        return r.headers.get("Content-Type", ""), r.read().decode("utf-8")


def families(text: str) -> dict:
    """The page's families by name, as ``prometheus_client``'s parser reads them: ``{name: (type, samples)}`` with
    ``samples`` a list of ``(sample name, labels, value)``. A counter's family is named without ``_total``."""
    from prometheus_client.parser import text_string_to_metric_families

    out = {}
    for f in text_string_to_metric_families(text):
        out[f.name] = (f.type, [(s.name, dict(s.labels), s.value) for s in f.samples])
    return out


def type_lines(text: str) -> dict[str, str]:
    """``# TYPE name type`` lines of the page: the names as written (prometheus_client's parser strips ``_total``)."""
    out = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            parts = line.split()
            if len(parts) >= 4:
                out[parts[2]] = parts[3]
    return out


def value(fams: dict, name: str, **labels: str) -> float | None:
    """The sum of ``name``'s samples whose labels include ``labels`` (None: no such series)."""
    if name not in fams:
        return None
    found = [v for sname, lab, v in fams[name][1]
             if sname in (name, name + "_total") and all(lab.get(k) == w for k, w in labels.items())]
    return sum(found) if found else None


def histogram(fams: dict, name: str, **labels: str) -> tuple[list[tuple[float, float]], float, float] | None:
    """``(cumulative buckets [(le, count)] ascending, sum, count)`` of one labelled histogram, or None."""
    if name not in fams:
        return None
    buckets, total, count = [], None, None
    for sname, lab, v in fams[name][1]:
        if not all(lab.get(k) == w for k, w in labels.items()):
            continue
        if sname == name + "_bucket":
            buckets.append((float(lab["le"]), v))
        elif sname == name + "_sum":
            total = v
        elif sname == name + "_count":
            count = v
    if not buckets or total is None or count is None:
        return None
    return sorted(buckets), total, count


def unknown_series(fams: dict, known: set[str]) -> list[str]:
    """Models named in any per-model series that the server does not serve (a label per unknown name grows the
    page without bound)."""
    seen = set()
    for _type, samples in fams.values():
        for _name, lab, _v in samples:
            if "model" in lab and lab["model"] not in known:
                seen.add(lab["model"])
    return sorted(seen)
