"""A fail measured beside machine noise above the limit is measured once more, in a fresh child, and the second
measurement decides (``graders.runner._grade_part``).

The children are simulated in process: each fake child streams signed events for the criteria its command line
leaves to grade, so what is tested is the runner's bookkeeping (which criteria go again, which result stands,
what the report says), not pytest.
"""
from __future__ import annotations

import pytest

from graders import events, runner
from graders.channel import Signer
from graders.course import phase as course_phase
from graders.outcomes import load_outcomes
from graders.records import GradeRun

SPEC_IDS = ("p1.p50_agrees", "p1.throughput_agrees")   # lower is better, pass <= 15 % and <= 20 %


def _grade(tmp_path, monkeypatch, measurements: dict[str, list[events.End]]):
    """Grade SPEC_IDS of phase 1 with children that report ``measurements[id]`` in turn; returns (run, commands)."""
    outcomes = load_outcomes(1)
    wanted = {c: outcomes.criteria[c] for c in SPEC_IDS}
    commands: list[list[str]] = []

    def fake_run_child(box, cmd, part, wanted, results, run, records, out, attempt, log, t_start, child_user):
        commands.append(cmd)
        key = b"k" * 32
        child = runner._Child(part, wanted, results, run, records, key, log, t_start)
        done = next(a for a in cmd if a.startswith("--lab-done=")).split("=", 1)[1].split(",")
        stream = [events.Session(profile="cpu", fingerprint={}, pid=1), events.ImportStart(workload_ms=1.0),
                  events.ImportEnd(error=None)]
        for cid in wanted:
            if cid not in done:
                stream += [events.Start(id=cid, time_limit_s=60, memory_limit_mb=1000), measurements[cid].pop(0)]
        signer = Signer(key)
        child.feed("".join(signer.sign(events.encode(ev).rstrip("\n")) for ev in stream).encode())

        class Done:
            returncode = 0
        child.proc = Done()
        return child, None

    monkeypatch.setattr(runner, "_run_child", fake_run_child)
    run = GradeRun(phase=1, impl="reference", submission="x", profile="cpu", fingerprint={}, started_at="",
                   duration_s=0, criteria=[])
    runner._grade_part(course_phase(1).parts[0], wanted, run, impl="reference", root=tmp_path, quick=True, task=None,
                       profile="cpu", out=tmp_path, python="python", log=lambda m: None, bench_files=[], t_start=0.0)
    return run, commands


def _end(cid, value, *, noise=None, outcome="recorded"):
    return events.End(id=cid, outcome=outcome, value=value, noise=noise, message=f"measured {value}")


def test_a_fail_beside_machine_noise_is_measured_again_and_the_second_decides(tmp_path, monkeypatch):
    run, commands = _grade(tmp_path, monkeypatch, {
        "p1.p50_agrees": [_end("p1.p50_agrees", 40.0, noise=0.5), _end("p1.p50_agrees", 3.0, noise=0.02)],
        "p1.throughput_agrees": [_end("p1.throughput_agrees", 5.0, noise=0.02)]})
    by_id = {r.id: r for r in run.criteria}
    assert len(commands) == 2, "one child for both, then one for the noisy fail alone"
    assert "p1.throughput_agrees" in next(a for a in commands[1] if a.startswith("--lab-done="))
    p50 = by_id["p1.p50_agrees"]
    assert p50.verdict == "pass" and p50.value == 3.0
    assert p50.message.startswith("measured twice") and "40" in p50.message
    assert p50.details["first_measurement"]["verdict"] == "fail"
    assert by_id["p1.throughput_agrees"].verdict == "pass"


def test_a_wrong_submission_fails_twice_and_the_report_says_so(tmp_path, monkeypatch):
    run, commands = _grade(tmp_path, monkeypatch, {
        "p1.p50_agrees": [_end("p1.p50_agrees", 40.0, noise=0.5), _end("p1.p50_agrees", 45.0, noise=0.4)],
        "p1.throughput_agrees": [_end("p1.throughput_agrees", 5.0)]})
    p50 = {r.id: r for r in run.criteria}["p1.p50_agrees"]
    assert len(commands) == 2
    assert p50.verdict == "fail" and p50.value == 45.0 and "measured twice" in p50.message


@pytest.mark.parametrize("first", [
    _end("p1.p50_agrees", 40.0, noise=0.05),                    # a quiet machine: the fail stands
    _end("p1.p50_agrees", 40.0, noise=None),                    # nothing says the machine was noisy
    _end("p1.p50_agrees", None, outcome="failed"),              # a correctness gate: no timing involved
])
def test_a_quiet_or_forced_fail_is_not_measured_again(tmp_path, monkeypatch, first):
    run, commands = _grade(tmp_path, monkeypatch, {"p1.p50_agrees": [first],
                                                   "p1.throughput_agrees": [_end("p1.throughput_agrees", 5.0)]})
    assert len(commands) == 1
    p50 = {r.id: r for r in run.criteria}["p1.p50_agrees"]
    assert p50.verdict == "fail" and "measured twice" not in p50.message
