"""Task 4.15: the learner's metrics, checked against what the grader sent and received.

The learner's ``ScaledServer`` with their ``ServerMetrics`` serves the grader's ``affine`` model behind the part's
HTTP side. The grader reads ``/metrics`` on the fresh server (every series of the model at 0, Triton's names and
types), sends a fixed script one request at a time (``metrics_check.py``: successes of known sizes, malformed
requests, an unknown model, requests whose deadline passes in the queue), then a load of 16 concurrent streams
from its own process, and reads ``/metrics`` again. Measured: checks failed, each exact where the grader knows the
answer:

- counts: successes, failures by reason, inferences (rows), replies by status code; executions between the fewest
  batches the rows fit in and one per request;
- times: the histogram's count is the success count and its sum the duration counter's (us vs s); no request took
  longer in the server than the grader saw it take (for every bucket, the server's cumulative count >= the
  grader's: the server's time lies inside the client's), and the server's total is at least a tenth of the
  grader's (a histogram in ms, or of nothing, fails one or the other); queue + compute <= request time;
- the pending gauge back at 0; no series for a model the server does not serve;
- the access log: one JSON line per inference request, with its status, and the ``X-Request-ID`` the grader sent
  echoed in the reply and in the log.
"""
from __future__ import annotations

import json
import logging
import math
import tempfile
import time
from pathlib import Path

from ...harness import settled
from ...plugin import criterion
from .harness import child_pids, load, shutdown, start_scaled
from .metrics_check import (
    HISTOGRAM,
    REASONS,
    REQUEST_ID,
    RESPONSES,
    TRITON_FAMILIES,
    expected_after_script,
    families,
    histogram,
    scrape,
    send_script,
    type_lines,
    unknown_series,
    value,
)
from .workload import CONFIG, affine_repository, grader_models

ACCESS_LOG = "inference_lab.access"
STREAMS = 16
LABELS = {"model": "affine", "version": "1"}
#: The server's summed request time must be at least this share of the grader's (server time <= client time).
MIN_SERVER_SHARE = 0.1


class _Lines(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(record.getMessage())
        except Exception:  # noqa: BLE001 - a message that cannot be formatted is read as not JSON
            self.lines.append("<unformattable>")


def _settled(url: str) -> tuple[str, str, dict]:
    """``/metrics`` once the pending gauge is back at 0 (at most 2 s): the pool reports a batch just after it
    answers it."""
    settled(lambda: value(families(scrape(url)[1]), "nv_inference_pending_request_count", **LABELS),
            lambda pending: pending in (0, None), 2.0)
    time.sleep(0.2)
    ctype, text = scrape(url)
    return ctype, text, families(text)


def _names_and_types(text: str, fams: dict) -> list[str]:
    problems = []
    typed = type_lines(text)
    for name, (kind, labels) in TRITON_FAMILIES.items():
        if typed.get(name) != kind:
            written = {n: t for n, t in typed.items() if n.startswith(name)}
            problems.append(f"{name}: expected '# TYPE {name} {kind}' (Triton's name, no _total), found {written or 'nothing'}")
            continue
        samples = fams[name][1]
        if not samples or any(set(lab) != labels for _n, lab, _v in samples):
            problems.append(f"{name}: every series needs exactly the labels {sorted(labels)}")
    if typed.get(HISTOGRAM) != "histogram":
        problems.append(f"{HISTOGRAM}: expected a histogram, found {typed.get(HISTOGRAM)}")
    if typed.get(RESPONSES) != "counter":
        problems.append(f"{RESPONSES}: expected a counter, found {typed.get(RESPONSES)}")
    return problems


def _zero_at_load(fams: dict) -> list[str]:
    """Every series of the model exists before any HTTP request (success and failures at 0; the grader's first
    request went to ``infer`` directly, so the pool's counters may say 1 batch)."""
    missing = [n for n in TRITON_FAMILIES if value(fams, n, **LABELS) is None]
    missing += [n for n in ("nv_inference_request_success", "nv_inference_pending_request_count")
                if value(fams, n, **LABELS) not in (0, None)]
    missing += [f"nv_inference_request_failure{{reason={r}}}" for r in REASONS
                if value(fams, "nv_inference_request_failure", **LABELS, reason=r) != 0]
    if histogram(fams, HISTOGRAM, **LABELS) is None:
        missing.append(HISTOGRAM)
    return [f"series not at 0 when the model loaded (Prometheus cannot tell 0 from no data): {missing}"] if missing \
        else []


def _counts(fams: dict, want: dict, what: str) -> list[str]:
    problems = []
    got = {"success": value(fams, "nv_inference_request_success", **LABELS),
           "inferences": value(fams, "nv_inference_count", **LABELS)}
    for k in ("success", "inferences"):
        if got[k] != want[k]:
            problems.append(f"{what}: {k} {got[k]}, expected {want[k]}")
    for reason in REASONS:
        g = value(fams, "nv_inference_request_failure", **LABELS, reason=reason) or 0
        if g != want["failure"].get(reason, 0):
            problems.append(f"{what}: failures with reason {reason}: {g:g}, expected {want['failure'].get(reason, 0)}")
    lo, hi = want["executions"]
    e = value(fams, "nv_inference_exec_count", **LABELS)
    if e is None or not lo <= e <= hi:
        problems.append(f"{what}: executions {e}, expected between {lo} (the rows in full batches) and {hi} "
                        "(one per request)")
    responses = {lab.get("code"): v for n, lab, v in fams.get(RESPONSES.removesuffix("_total"), ("", []))[1]
                 if n == RESPONSES}
    responses = {k: v for k, v in responses.items() if v}
    if responses != {k: float(v) for k, v in want["responses"].items()}:
        problems.append(f"{what}: replies by code {responses}, expected {want['responses']}")
    return problems


def _times(fams: dict, client_latencies_s: list[float]) -> list[str]:
    problems = []
    h = histogram(fams, HISTOGRAM, **LABELS)
    success = value(fams, "nv_inference_request_success", **LABELS) or 0
    if h is None:
        return [f"no {HISTOGRAM} for the model"]
    buckets, total_s, count = h
    if count != success:
        problems.append(f"the latency histogram counts {count:g} requests, the success counter {success:g}")
    duration_us = value(fams, "nv_inference_request_duration_us", **LABELS) or 0.0
    if abs(duration_us - total_s * 1e6) > max(1000.0, 0.01 * duration_us):
        problems.append(f"nv_inference_request_duration_us is {duration_us:.0f} us, the histogram's sum {total_s:.6f} s: "
                        "one of them is in the wrong unit")
    queue = value(fams, "nv_inference_queue_duration_us", **LABELS) or 0.0
    compute = value(fams, "nv_inference_compute_infer_duration_us", **LABELS) or 0.0
    if compute <= 0:
        problems.append("nv_inference_compute_infer_duration_us is 0 after the model ran")
    if queue + compute > duration_us * 1.01 + 1000.0:
        problems.append(f"queue {queue:.0f} us + compute {compute:.0f} us > the requests' total {duration_us:.0f} us")
    client = sorted(client_latencies_s)
    for le, cum in buckets:
        seen = sum(1 for c in client if c <= le)
        if cum < seen:
            problems.append(f"{cum:g} requests took <= {le:g} s in the server, but the grader saw {seen} take <= "
                            f"{le:g} s from its side: the server's times cannot exceed the client's")
            break
    if client and total_s < MIN_SERVER_SHARE * sum(client):
        problems.append(f"the server's requests took {total_s:.4f} s in all, under {MIN_SERVER_SHARE:.0%} of the "
                        f"{sum(client):.4f} s the grader measured: a histogram in the wrong unit or timing nothing")
    pending = value(fams, "nv_inference_pending_request_count", **LABELS)
    if pending != 0:
        problems.append(f"nv_inference_pending_request_count is {pending} with nothing in flight")
    return problems


def _log(lines: list[str], want_statuses: list[int]) -> list[str]:
    records = []
    for line in lines:
        try:
            rec = json.loads(line)
        except ValueError:
            return [f"an access-log line is not JSON: {line[:120]!r}"]
        if isinstance(rec, dict) and rec.get("event") == "infer":
            records.append(rec)
    problems = []
    need = {"ts", "request_id", "model", "version", "status", "duration_ms"}
    incomplete = [r for r in records if not need <= set(r)]
    if incomplete:
        problems.append(f"access-log records without {sorted(need - set(incomplete[0]))}: {incomplete[0]}")
    got = sorted(int(r.get("status", 0)) for r in records)
    if got != sorted(want_statuses):
        problems.append(f"the access log has {len(records)} inference records, the grader sent "
                        f"{len(want_statuses)} requests (statuses differ: "
                        f"{_diff(got, sorted(want_statuses))})")
    if not any(r.get("request_id") == REQUEST_ID for r in records):
        problems.append(f"no access-log record carries the X-Request-ID '{REQUEST_ID}' the grader sent")
    return problems


def _diff(a: list[int], b: list[int]) -> str:
    from collections import Counter
    ca, cb = Counter(a), Counter(b)
    return ", ".join(f"{k}: {ca[k]} logged vs {cb[k]} sent" for k in sorted(set(ca) | set(cb)) if ca[k] != cb[k])


@criterion("p4.server.metrics")
def test_metrics(grade, learner, quick):
    ServerThread = learner.attr("ServerThread")
    root = Path(tempfile.mkdtemp(prefix="p4-server-metrics-"))
    folder = affine_repository(root, versions=(1,), config=CONFIG)
    metrics = learner.call("ServerMetrics")
    before = child_pids()
    server = start_scaled(learner, grader_models(folder, [1]), "the affine model, with your ServerMetrics",
                          metrics=metrics)
    capture = _Lines()
    logger = logging.getLogger(ACCESS_LOG)
    old_level = logger.level
    logger.addHandler(capture)
    logger.setLevel(logging.INFO)
    problems: list[str] = []
    details: dict = {}
    count = 200 if quick else 600
    try:
        with ServerThread(server, max_in_flight=4 * STREAMS, threads=2) as running:
            url = f"{running.base}/metrics"
            ctype, text = scrape(url)
            fams = families(text)
            if not ctype.startswith("text/plain"):
                problems.append(f"/metrics is served as {ctype!r}, not Prometheus' text/plain")
            problems += _names_and_types(text, fams)
            problems += _zero_at_load(fams)
            capture.lines.clear()  # the grader's first request (start_scaled) came before the metrics were read

            base_rows = value(fams, "nv_inference_count", **LABELS) or 0
            base_exec = value(fams, "nv_inference_exec_count", **LABELS) or 0
            replies = send_script(running.port)
            want = expected_after_script()
            wrong = [(r.kind, r.status) for r in replies if r.status != {"ok": 200, "bad shape": 400, "bad dtype": 400,
                                                                          "bad json": 400, "unknown model": 404,
                                                                          "deadline": 504}[r.kind]]
            if wrong:
                problems.append(f"the script's requests got the wrong status (kind, status): {wrong}")
            echoed = [r for r in replies if r.kind == "ok" and r.request_id == REQUEST_ID]
            if not echoed:
                problems.append(f"the reply to a request sent with X-Request-ID '{REQUEST_ID}' does not carry it back")
            _, _, fams = _settled(url)
            want_script = {**want, "inferences": want["inferences"] + base_rows,
                           "executions": (want["executions"] + base_exec, want["executions"] + base_exec)}
            problems += _counts(fams, want_script, "after the script")

            report = load(running.url, "affine", streams=STREAMS, duration=30.0, warmup=0.0, rows=2, feature="4",
                          out_dims="3", expect="affine:1", timeline=True, count=count, retry=False)
            _, text, fams = _settled(url)
    finally:
        logger.removeHandler(capture)
        logger.setLevel(old_level)
        error = shutdown(learner, server, before)
        if error:
            problems.append(f"closing the server: {error}")
    ok = report["counts"].get("ok", 0)
    statuses = {o.split()[1]: n for o, n in report["counts"].items() if o.startswith("http ")}
    if set(report["counts"]) - {"ok"} - {f"http {s}" for s in statuses}:
        problems.append(f"the load of {STREAMS} streams was not answered: {report['counts']}")
    rows_total = want_script["inferences"] + 2 * ok
    success_total = want_script["success"] + ok
    want_all = {"success": success_total, "inferences": rows_total,
                "executions": (want_script["executions"][0] + math.ceil(2 * ok / 8), want_script["executions"][1] + ok),
                "failure": {**want["failure"]},
                "responses": {**want["responses"], "200": want["responses"]["200"] + ok}}
    for code, n in statuses.items():
        want_all["responses"][code] = want_all["responses"].get(code, 0) + n
        if code in ("503", "504"):
            want_all["failure"]["REJECTED"] = want_all["failure"].get("REJECTED", 0) + n
        elif code == "500":
            want_all["failure"]["BACKEND"] = want_all["failure"].get("BACKEND", 0) + n
    problems += _counts(fams, want_all, f"after {report['requests']} more requests from {STREAMS} streams")
    client = [r.latency_s for r in replies if r.status == 200]
    client += [b - a for a, b, o in report["timeline"] if o == "ok"]
    problems += _times(fams, client)
    unknown = unknown_series(fams, {"affine"})
    if unknown:
        problems.append(f"series for models the server does not serve: {unknown}")
    sent_statuses = [r.status for r in replies] + [200] * ok + [int(s) for s, n in statuses.items() for _ in range(n)]
    problems += _log(capture.lines, sent_statuses)
    h = histogram(fams, HISTOGRAM, **LABELS)
    details.update({"load": {k: report[k] for k in ("counts", "requests", "requests_per_s", "p50_ms", "p95_ms",
                                                     "p99_ms")},
                    "server": {"success": value(fams, "nv_inference_request_success", **LABELS),
                               "executions": value(fams, "nv_inference_exec_count", **LABELS),
                               "inferences": value(fams, "nv_inference_count", **LABELS),
                               "histogram_sum_s": h[1] if h else None,
                               "client_sum_s": sum(client)},
                    "access_log_lines": len(capture.lines)})
    server_p = h[1] / h[2] * 1000 if h and h[2] else float("nan")
    grade.record(len(problems), details=details, message=(
        "; ".join(problems[:6]) + (f" (+{len(problems) - 6} more)" if len(problems) > 6 else "") if problems else
        f"{success_total:g} successes, {rows_total:g} rows and every failure counted exactly (Triton's names); "
        f"mean request {server_p:.2f} ms in the server vs {sum(client) / len(client) * 1000:.2f} ms at the grader; "
        f"{len(sent_statuses)} access-log lines"))
