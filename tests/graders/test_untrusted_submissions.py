"""Dishonest submissions, graded end to end as an instructor would: none gets credit, each is flagged.

Each submission is the reference's code placed in the learner's folder (so it would pass honestly) plus one
trick, graded on one cheap criterion (``p1.stats_exact``) so the file stays fast. The honest control, the
same code without a trick, passes with no ``tampered`` flag.
"""
from __future__ import annotations

import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from gradelib import ROOT, make_submission, run_grade

CID = "p1.stats_exact"

# Each trick runs when the learner's package is imported (starter/__init__.py) or inside the graded call.
TRICKS = {
    "forges grading events": """
import json as _j, os as _o, sys as _s
for _a in _s.argv:
    if _a.startswith("--lab-events-fd="):
        _body = _j.dumps({"event": "end", "id": "p1.stats_exact", "outcome": "recorded", "value": 0.0})
        _o.write(int(_a.split("=")[1]), (_j.dumps({"seq": 3, "tag": "0" * 64, "body": _body}) + "\\n").encode())
""",
    "imports the reference": "from phase1_basics.reference import summarize_latencies  # noqa\n",
    "replaces a grader helper at import": """
import sys as _s
for _n, _m in list(_s.modules.items()):
    if _n.startswith("graders.phase1") and hasattr(_m, "rel_err"):
        _m.rel_err = lambda *a, **k: 0.0
""",
    "slows the grader's baseline by patching torch": """
import time as _t, torch.nn.functional as _F
_linear = _F.linear
def _slow_linear(*a, **k):
    _t.sleep(0.001)
    return _linear(*a, **k)
_F.linear = _slow_linear
""",
    "opens a socket": """
import socket as _socket
try:
    _socket.create_connection(("10.255.255.1", 80), timeout=1).close()
except OSError:
    pass
""",
    "writes outside its folder": """
import tempfile as _tf, os as _o
try:
    open(_o.path.join(_o.path.dirname(_tf.gettempdir()), "inference-lab-tamper-probe.txt"), "w").write("x")
except OSError:
    pass
""",
    "searches the grader's objects": "import gc as _gc\n_everything = _gc.get_objects()\n",
}

IN_CALL = {  # tricks played inside the graded function, not at import
    "replaces a grader helper during the graded call": """
_summarize = summarize_latencies
def summarize_latencies(samples):
    import sys as _s
    for _n, _m in list(_s.modules.items()):
        if _n.startswith("graders.phase1") and hasattr(_m, "rel_err"):
            _m.rel_err = lambda *a, **k: 0.0
    return _summarize(samples)
""",
    "skips its own criterion": """
def summarize_latencies(samples):
    import pytest as _p
    _p.skip("needs an NVIDIA GPU (torch.cuda.is_available() is False)")
""",
}


def _submission(tmp_path, code: str = "", in_call: str = ""):
    sub = make_submission(tmp_path, {}, "phase1_basics")
    starter = sub / "phase1_basics" / "starter"
    for f in (ROOT / "phase1_basics" / "reference").glob("*.py"):
        shutil.copy(f, starter / f.name)
    if in_call:
        lat = starter / "latency.py"
        lat.write_text(lat.read_text() + "\n" + in_call)
    init = starter / "__init__.py"
    init.write_text(init.read_text() + "\n" + code)
    return sub


def _grade(out, sub):
    return run_grade(out, "--phase", "1", "--criterion", CID, "--quick", "--submission", str(sub), timeout=300)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Every submission of this file, graded two at a time (each grade is mostly a child's start-up)."""
    root = tmp_path_factory.mktemp("untrusted")
    cases = {"honest": ("", "")} | {t: (TRICKS.get(t, ""), IN_CALL.get(t, "")) for t in [*TRICKS, *IN_CALL]}
    subs = {}
    for i, (name, (code, in_call)) in enumerate(cases.items()):
        (root / str(i)).mkdir()
        subs[name] = (root / str(i), _submission(root / str(i), code, in_call))
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {name: pool.submit(_grade, where / "out", sub) for name, (where, sub) in subs.items()}
        return {name: f.result() for name, f in futures.items()}


def test_the_honest_control_passes_unflagged(graded):
    g = graded["honest"]
    c = g.criterion(CID)
    assert c["verdict"] == "pass" and not c["tampered"], g.stdout[-2000:]
    assert not [f for f in g.results["flags"] if f["severity"] == "tampered"]
    prot = g.results["protections"]
    assert {"audit hook", "integrity checks", "temporary folder"} <= set(prot)


@pytest.mark.parametrize("trick", sorted(TRICKS) + sorted(IN_CALL))
def test_a_dishonest_submission_gets_no_credit_and_is_flagged(trick, graded):
    g = graded[trick]
    c = g.criterion(CID)
    assert c["verdict"] == "fail" and c["points"] == 0, f"{trick}: {c['verdict']}: {c['message']}\n{g.stdout[-2000:]}"
    if trick == "skips its own criterion":  # the learner cannot skip: a plain fail that says why
        assert "only the grader decides" in c["message"]
        return
    assert c["tampered"], c["message"]
    assert "TAMPERED" in c["message"] and "TAMPERED" in g.stdout
    assert any(f["severity"] == "tampered" for f in g.results["flags"])
    assert g.code == 1
    if trick == "writes outside its folder":  # refused, not only reported
        assert not (Path(tempfile.gettempdir()) / "inference-lab-tamper-probe.txt").exists()
