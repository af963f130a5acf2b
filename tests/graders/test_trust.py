"""The trusted verdict path, in process: the signed channel, the parent's decision, the scan, the snapshot.

End to end (a dishonest submission graded as a user would) is ``test_untrusted_submissions.py``.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
import sys
import types

import pytest

from graders import events
from graders.channel import ChannelError, Signer, Verifier, new_key
from graders.decide import decide
from graders.outcomes import load_outcomes
from graders.tamper import Snapshot, scan_submission
from graders.tamper.scan import scan_source

from gradelib import ROOT


def _line(signer: Signer, event: events.Event) -> str:
    return signer.sign(events.encode(event).rstrip("\n"))


def test_signed_events_verify_in_order():
    key = new_key()
    s, v = Signer(key), Verifier(key)
    for ev in (events.ImportStart(), events.ImportEnd(error=None)):
        assert events.decode(v.open(_line(s, ev))).kind == ev.kind


def test_forged_duplicated_and_lost_events_are_refused():
    key = new_key()
    s = Signer(key)
    a, b, c = (_line(s, events.ImportStart()), _line(s, events.ImportEnd(error=None)),
               _line(s, events.GraderError(message="x")))
    v = Verifier(key)
    v.open(a)
    with pytest.raises(ChannelError, match="duplicated or replayed"):
        v.open(a)
    with pytest.raises(ChannelError, match="lost"):
        v.open(c)
    v.open(b)
    forged = json.loads(c)
    forged["body"] = forged["body"].replace('"x"', '"y"')
    with pytest.raises(ChannelError, match="forged"):
        v.open(json.dumps(forged))
    with pytest.raises(ChannelError, match="forged"):  # another key: another grader's, or a guess
        Verifier(new_key()).open(a)
    with pytest.raises(ChannelError, match="not a signed"):
        v.open('{"event": "end", "id": "p1.latency_agrees"}')


def _spec(cid: str, phase: int = 1):
    spec = load_outcomes(phase).criteria[cid]
    return spec, spec.thresholds_for("cpu")


def test_the_parent_decides_from_raw_measurements():
    spec, th = _spec("p1.formats_agree")
    good = decide(spec, th, events.End(id=spec.id, outcome="recorded", value=th.full / 2), cuda=False)
    assert good.verdict == "pass" and good.points == spec.points
    bad = decide(spec, th, events.End(id=spec.id, outcome="recorded", value=th.pass_ * 10), cuda=False)
    assert bad.verdict == "fail" and bad.points == 0 and "needs <=" in bad.message


def test_a_gpu_result_from_a_machine_without_a_gpu_is_tampered():
    gpu = next(c for c in load_outcomes(1).criteria.values() if c.gpu)
    th = gpu.thresholds_for("cuda")
    res = decide(gpu, th, events.End(id=gpu.id, outcome="recorded", value=th.full), cuda=False)
    assert res.verdict == "fail" and res.points == 0 and res.tampered
    skipped = decide(gpu, th, events.End(id=gpu.id, outcome="skipped", message="needs an NVIDIA GPU"), cuda=False)
    assert skipped.verdict == "skipped" and not skipped.tampered


def test_the_snapshot_sees_a_replaced_helper_and_code_swap():
    mod = types.ModuleType("graders._trust_probe")

    def helper():
        return 1

    mod.helper = helper
    sys.modules[mod.__name__] = mod
    try:
        snap = Snapshot.take()
        assert snap.changes() == []
        mod.helper = lambda: 2
        assert snap.changes() == ["graders._trust_probe.helper was replaced"]
        mod.helper = helper
        helper.__code__ = (lambda: 3).__code__
        assert snap.changes() == ["graders._trust_probe.helper had its code replaced"]
    finally:
        del sys.modules[mod.__name__]


def test_the_snapshot_accepts_a_library_rewrapping_its_own_function():
    import importlib

    import torch

    snap = Snapshot.take()
    importlib.import_module("torch._dynamo")  # wraps torch.manual_seed with torch's own decorator
    assert snap.changes() == []
    original = torch.nn.functional.linear
    torch.nn.functional.linear = lambda *a, **k: original(*a, **k)
    try:
        assert snap.changes() == ["torch.nn.functional.linear was replaced"]
    finally:
        torch.nn.functional.linear = original


@pytest.mark.parametrize("code, what", [
    ("import graders.harness\n", "grader's own package"),
    ("from phase1_basics.reference import *\n", "reference solution"),
    ("import time\ntime.perf_counter = lambda: 0\n", "replaces time.perf_counter"),
    ("import gc\nobjs = gc.get_objects()\n", "gc.get_objects"),
    ("import sys\nsys.modules['x'] = None\n", "sys.modules"),
    ("open('/etc/passwd', 'w')\n", "fixed system path"),
    ("import socket\n", "network"),
])
def test_the_scan_flags_what_no_honest_submission_needs(code, what):
    found = scan_source(code, "starter/__init__.py")
    assert any(what in f.what for f in found), found


def test_the_scan_is_quiet_on_the_shipped_starters_and_references(tmp_path):
    for phase_dir in sorted(ROOT.glob("phase[0-9]_*")):
        copy = tmp_path / phase_dir.name
        shutil.copytree(phase_dir, copy, ignore=shutil.ignore_patterns("__pycache__"))
        for ref in list(copy.rglob("reference")):  # the reference's code, graded as a learner's
            shutil.copytree(ref, ref.parent / "starter", dirs_exist_ok=True)
            shutil.rmtree(ref)
    assert scan_submission(sorted(tmp_path.iterdir()), relative_to=tmp_path, course_root=ROOT) == []


def test_the_course_s_own_helper_files_are_not_scanned_unless_changed(tmp_path):
    """``workers.py`` pins worker processes to cores (os.sched_setaffinity): the course's code, not a flag, until
    the learner edits it."""
    rel = Path("phase3_advanced/gpu/workers.py")
    (tmp_path / rel.parent).mkdir(parents=True)
    (tmp_path / rel).write_bytes((ROOT / rel).read_bytes())
    assert scan_submission([tmp_path / "phase3_advanced"], relative_to=tmp_path, course_root=ROOT) == []
    (tmp_path / rel).write_text((ROOT / rel).read_text() + "\n# edited\n")
    found = scan_submission([tmp_path / "phase3_advanced"], relative_to=tmp_path, course_root=ROOT)
    assert any("CPU affinity" in f.what and "workers.py" in f.where for f in found), found


def _watched(spec, tmp_path):
    """The runner's view of one child grading ``spec``: (the run, the stream checker, the child's signer)."""
    from graders.course import phase as course_phase
    from graders.records import GradeRun
    from graders.runner import _Child

    run = GradeRun(phase=1, impl="starter", submission="x", profile="cpu", fingerprint={}, started_at="", duration_s=0,
                   criteria=[])
    key = new_key()
    child = _Child(course_phase(1).parts[0], {spec.id: spec}, {}, run, tmp_path / "records.jsonl", key,
                   lambda m: None, 0.0)
    return run, child, Signer(key)


def test_the_parent_flags_a_grader_workload_slowed_after_the_import(tmp_path):
    spec, _ = _spec("p1.p50_agrees")
    run, child, s = _watched(spec, tmp_path)
    stream = [events.Session(profile="cpu", fingerprint={}, pid=1), events.ImportStart(workload_ms=5.0),
              events.ImportEnd(error=None), events.Start(id=spec.id, time_limit_s=60, memory_limit_mb=1000),
              events.End(id=spec.id, outcome="recorded", value=1.0,
                         details={"grader_workload_ms": {"before_your_import": 5.0, "after": 16.0}})]
    child.feed("".join(_line(s, ev) for ev in stream).encode())
    assert not child.broken
    assert [f["criterion"] for f in run.flags] == [spec.id] and "3.2x slower" in run.flags[0]["what"]
    assert child.results[spec.id].verdict == "pass"  # a flag for a person: the verdict stands


def test_the_parent_fails_an_out_of_order_stream_as_tampered(tmp_path):
    spec, _ = _spec("p1.p50_agrees")
    run, child, s = _watched(spec, tmp_path)
    stream = [events.Session(profile="cpu", fingerprint={}, pid=1),
              events.End(id=spec.id, outcome="recorded", value=1.0)]  # an end with no start
    child.feed("".join(_line(s, ev) for ev in stream).encode())
    assert "without having started" in child.broken and spec.id not in child.results
