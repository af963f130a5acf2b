"""Hints computed from the measurement: the gap to full marks, outliers, and when the machine decided."""
from __future__ import annotations

from graders.hints import compose_hint, outlier_note
from graders.outcomes import load_outcomes
from graders.phase1.diagnosis import calls_hint, timed_region_hint
from graders.reporting._format import truncate


def _spec(cid="p1.p50_agrees"):
    spec = load_outcomes(1).criteria[cid]
    return spec, spec.thresholds_for("cpu")


def test_full_marks_need_no_hint():
    spec, th = _spec()
    assert compose_hint(spec, th, verdict="pass", points=spec.points, value=1.0) == ""


def test_a_partial_pass_says_how_far_from_full_marks():
    spec, th = _spec()
    h = compose_hint(spec, th, verdict="pass", points=8.0, value=9.0)
    assert "8/10" in h and "full marks at <= 5%" in h and "measured 9%" in h and "4% to go" in h
    assert spec.guide in h


def test_a_partial_pass_says_what_usually_closes_the_gap_not_the_fail_advice():
    spec, th = _spec()
    assert spec.to_full and spec.to_full != spec.hint
    h = compose_hint(spec, th, verdict="pass", points=8.0, value=9.0)
    assert spec.to_full in h and spec.hint not in h


def test_every_partially_scored_timing_criterion_says_how_to_reach_full_marks():
    timed = {"p1.known_latency", "p1.p50_agrees", "p1.run_to_run", "p1.throughput_agrees", "p1.device_rows",
             "p2.quantization.dynamic_speedup", "p2.quantization.onnx_speedup_eager",
             "p2.quantization.onnx_speedup_ort", "p2.compilation.ort_speedup",
             "p3.batching.speedup", "p3.batching.latency_bound", "p3.batching.pool_throughput"}
    criteria = {cid: c for phase in (1, 2, 3) for cid, c in load_outcomes(phase).criteria.items()}
    assert timed <= set(criteria)
    assert [cid for cid in sorted(timed) if not criteria[cid].to_full] == []


def test_the_criterion_s_own_diagnosis_replaces_the_guide_s_advice():
    spec, th = _spec()
    h = compose_hint(spec, th, verdict="fail", points=0, value=50.0, measured_hint=timed_region_hint(2.02))
    assert "about 2 calls" in h and spec.hint not in h


def test_inconclusive_blames_the_machine_with_its_figure_and_how_to_quiet_it():
    spec, th = _spec()
    h = compose_hint(spec, th, verdict="inconclusive", points=0, value=14.0, noise=0.23)
    assert "not your code" in h and "23%" in h and "taskset -c 1 make grade PHASE=1 TASK=2" in h and "PROFILE=" in h


def test_a_fail_on_a_noisy_machine_says_the_noise_may_have_cost_points():
    spec, th = _spec()
    h = compose_hint(spec, th, verdict="fail", points=0, value=20.0, noise=0.31)
    assert spec.hint in h and "31%" in h and "re-run" in h


def test_outlier_samples_are_named_with_their_positions():
    samples = [2.0, 2.01, 1.99, 2.02, 2.0, 1.98, 9.5, 2.01]
    note = outlier_note({"samples": {"your p50 ms": samples}, "samples_unit": " ms"})
    assert "1 of 8 'your p50 ms' samples" in note and "#7 9.5" in note
    assert outlier_note({"samples": {"x": [1.0, 1.0, 1.0, 1.0, 1.0]}}) == ""


def test_timed_region_diagnosis_reads_the_ratio():
    assert timed_region_hint(1.02) == ""
    assert "about 3 calls" in timed_region_hint(2.97)
    assert "misses part" in timed_region_hint(0.6)
    assert "extra work" in timed_region_hint(1.4)
    # The grader counted one call per sample: a figure 1.84x the truth is extra work (a batch built in the
    # timed region), not "about 2 calls".
    assert "about 2 calls" in timed_region_hint(1.84)
    assert "building inputs" in timed_region_hint(1.84, one_call_each=True)
    assert "called 170 times" in calls_hint(170, 85) and calls_hint(85, 85) == ""


def test_truncation_never_cuts_a_word():
    assert truncate("Every model format gives the eager outputs", 24) == "Every model format…"
    assert truncate("short", 10) == "short"
