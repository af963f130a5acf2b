"""Part p4.server graded end to end on broken submissions: each gets no credit for the criterion it breaks.

Each submission is the whole reference with one mistake in one file; each grade runs only the criterion the test
asserts, in quick mode (5-15 s each).
"""
from __future__ import annotations

import pytest

from gradelib import grade_broken, reference_with

pytestmark = [pytest.mark.grading, pytest.mark.slow]

PART = "phase4_production/server"


def test_a_server_that_answers_500_to_a_malformed_request_gets_no_protocol_credit(tmp_path):
    # input names are not checked: a request without the model's input reaches given[name], a KeyError, which the
    # app answers 500
    code = reference_with(PART, "server.py", "        missing = sorted(set(expected) - set(given))\n",
                          "        missing = unknown = []  # BROKEN: input names are not checked\n")
    code = code.replace("        if unknown:\n            raise ProtocolError(400, f\"model '{model.name}' has no input",
                        "        if False:\n            raise ProtocolError(400, f\"model '{model.name}' has no input")
    g = grade_broken(tmp_path, PART, "server.py", code, "p4.server.protocol", on_reference=True)
    c = g.criterion("p4.server.protocol")
    assert c["verdict"] == "fail" and c["points"] == 0, c
    assert "unknown input" in c["message"] and "status 500" in c["message"], c["message"]


def test_a_loader_that_serves_every_version_gets_no_repository_credit(tmp_path):
    old = "    policy = config.version_policy.WhichOneof(\"policy_choice\") or \"latest\"\n"
    code = reference_with(PART, "repository.py", old, "    policy = \"all\"  # BROKEN: the version policy is ignored\n")
    g = grade_broken(tmp_path, PART, "repository.py", code, "p4.server.repository", on_reference=True)
    c = g.criterion("p4.server.repository")
    assert c["verdict"] == "fail" and c["points"] == 0, c
    assert "select_versions" in c["message"] and "expected [3]" in c["message"], c["message"]


def test_a_pool_that_runs_each_request_alone_gets_no_scale_credit(tmp_path):
    # no dynamic batching: every request is its own batch, a matrix-vector product per 2 frames
    old = "                    rows, n = rows + p.rows, n + 1\n                    if not policy.batching:\n"
    code = reference_with(PART, "pool.py", old,
                          "                    rows, n = rows + p.rows, n + 1\n                    if True:  # BROKEN\n")
    g = grade_broken(tmp_path, PART, "pool.py", code, "p4.server.scale", on_reference=True)
    c = g.criterion("p4.server.scale")
    if c["verdict"] == "skip":
        pytest.skip(f"real Triton cannot run here: {c['message']}")
    assert c["verdict"] == "fail" and c["points"] == 0, c
    assert "real Triton" in c["message"], c["message"]


def test_a_pool_that_drops_a_dead_workers_batch_gets_no_faults_credit(tmp_path):
    # the supervisor restarts the worker but forgets the batch it was running: those clients never get an answer
    old = "            retry = [p for p in batch if p.attempts < MAX_ATTEMPTS]\n"
    code = reference_with(PART, "pool.py", old, "            retry = []  # BROKEN: the dead worker's batch is lost\n")
    g = grade_broken(tmp_path, PART, "pool.py", code, "p4.server.faults", on_reference=True)
    c = g.criterion("p4.server.faults")
    assert c["verdict"] == "fail" and c["points"] == 0, c
    assert "never answered" in c["message"] and "lost" in c["message"], c["message"]


def test_metrics_that_count_a_malformed_request_as_a_failure_get_no_metrics_credit(tmp_path):
    # every non-200 reply of a known model is counted as a failure: the 400s the grader sent are no failure of the
    # model (Triton does not count them), so the failure counter is wrong
    old = "        elif status >= 500:\n"
    code = reference_with(PART, "metrics.py", old, "        elif status != 200:  # BROKEN: 4xx counted too\n")
    g = grade_broken(tmp_path, PART, "metrics.py", code, "p4.server.metrics", on_reference=True)
    c = g.criterion("p4.server.metrics")
    assert c["verdict"] == "fail" and c["points"] == 0, c
    assert "failures with reason OTHER" in c["message"], c["message"]


def test_metrics_whose_histogram_is_in_milliseconds_get_no_metrics_credit(tmp_path):
    old = "            self.latency.labels(**labels).observe(duration_s)\n"
    code = reference_with(PART, "metrics.py", old,
                          "            self.latency.labels(**labels).observe(duration_s * 1000)  # BROKEN: ms\n")
    g = grade_broken(tmp_path, PART, "metrics.py", code, "p4.server.metrics", on_reference=True)
    c = g.criterion("p4.server.metrics")
    assert c["verdict"] == "fail" and c["points"] == 0, c
    assert "wrong unit" in c["message"], c["message"]


def test_a_front_end_that_gives_slow_clients_inference_slots_gets_no_robustness_credit(tmp_path):
    # the app admits a request (takes one of max_in_flight) before its body has arrived, as this course's own app
    # once did: 50 clients trickling their bodies hold every slot, and every other client gets 503
    import shutil

    from gradelib import ROOT, make_submission, run_grade

    app = (ROOT / PART / "app.py").read_text()
    head, tail = "    async def infer(request):\n", "            raw = request.headers.get(HEADER_LENGTH)\n"
    assert app.count(head) == 1 and app.count(tail) == 1
    admit_first = (head + '        if state["in_flight"] >= max_in_flight:\n'
                   '            raise ProtocolError(503, "overloaded; retry", retry_after_s)\n'
                   '        state["in_flight"] += 1  # BROKEN: a slot before the body has arrived\n'
                   '        try:\n'
                   '            body = await request.read()\n')
    broken = app[:app.index(head)] + admit_first + app[app.index(tail):]
    sub = make_submission(tmp_path, {}, PART)
    for src in (ROOT / PART / "reference").glob("*.py"):
        if src.name != "__init__.py":
            shutil.copyfile(src, sub / PART / "starter" / src.name)
    (sub / PART / "app.py").write_text(broken)
    g = run_grade(tmp_path / "grade", "--phase", "4", "--part", "server", "--quick", "--submission", str(sub),
                  "--criterion", "p4.server.robustness")
    assert "Traceback" not in g.stdout and not g.results["grader_errors"], g.stdout[-3000:]
    c = g.criterion("p4.server.robustness")
    assert c["verdict"] == "fail" and c["points"] == 0, c
    assert "slow clients connected" in c["message"], c["message"]


def test_a_load_tool_that_never_retries_a_503_gets_no_loadtool_credit(tmp_path):
    # a 503 with Retry-After ends the request: the tool reports overload errors a real client would not have seen,
    # and its count of 503s no longer matches the server's (each retry is a request the server answered)
    old = '    if status == 503 and "Retry-After" in reply_headers:\n'
    code = reference_with(PART, "loadtest.py", old, "    if False:  # BROKEN: Retry-After is ignored\n")
    g = grade_broken(tmp_path, PART, "loadtest.py", code, "p4.server.loadtool", on_reference=True)
    c = g.criterion("p4.server.loadtool")
    assert c["verdict"] == "fail" and c["points"] == 0, c
    assert "503" in c["message"] and "retr" in c["message"], c["message"]


def test_a_load_tool_that_starts_its_clock_once_per_stream_gets_no_loadtool_credit(tmp_path):
    # the start is taken once, before a stream's loop, not before each request: every latency holds the stream's
    # whole past, far above what the server took
    old = "        k = 0\n        while time.monotonic() < end:\n"
    code = reference_with(PART, "loadtest.py", old, "        k = 0\n        start = time.monotonic()  # BROKEN: once\n"
                                                    "        while time.monotonic() < end:\n")
    code = code.replace("            start = time.monotonic()\n", "")
    g = grade_broken(tmp_path, PART, "loadtest.py", code, "p4.server.loadtool", on_reference=True)
    c = g.criterion("p4.server.loadtool")
    assert c["verdict"] == "fail" and c["points"] == 0, c
    assert "far above the server's own" in c["message"], c["message"]
