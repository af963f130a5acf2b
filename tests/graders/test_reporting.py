"""The reporting writers turn one GradeRun into the console table, results.json, Gradescope JSON
and report.md with plots; every output copes with missing values, NaN, skips and bad details."""
from __future__ import annotations

import json
import math
import random

import pytest

from graders.records import CriterionResult, GradeRun
from graders.reporting import (
    format_console,
    read_results_json,
    write_all,
    write_gradescope_json,
    write_markdown_report,
    write_results_json,
)
from graders.reporting.plots import plot_filename

GUIDE = "phase1_basics/IMPLEMENTATION_GUIDE.md#task-12-latency-measurement"


def _reject_constant(name: str):
    raise ValueError(f"non-standard JSON constant {name}")


def _strict_load(path):
    """json.loads that refuses NaN / Infinity / -Infinity."""
    return json.loads(path.read_text(encoding="utf-8"), parse_constant=_reject_constant)


def _crit(cid: str, verdict: str, points: float, max_points: float, **kw) -> CriterionResult:
    base = dict(id=cid, title=f"Title of {cid}", phase=1, task=2, guide=GUIDE, metric="speedup",
                unit="x", better="higher", verdict=verdict, points=points, max_points=max_points)
    base.update(kw)
    return CriterionResult(**base)


def make_run(**kw) -> GradeRun:
    rng = random.Random(0)
    criteria = [
        _crit("p1.formats_agree", "pass", 10, 10, unit="", better="lower", value=3e-6,
              threshold_pass=1e-4, message="max abs error 3e-6"),
        _crit("p1.latency_matches", "fail", 0, 10, unit="%", better="lower", value=27.3,
              threshold_pass=10, threshold_full=5,
              message="Reported 12.1 ms, measured 16.6 ms. " * 200,  # very long
              hint="Synchronize before reading the clock; see " + GUIDE,
              details={"samples": {"learner ms": [rng.gauss(12, 1) for _ in range(40)],
                                   "grader ms": [rng.gauss(16, 1) for _ in range(40)]},
                       "samples_unit": "ms", "n": 40, "iqr_over_median": 0.04,
                       "long_list": list(range(50))}),
        _crit("p1.batch_speedup", "inconclusive", 0, 10, value=1.93, threshold_pass=2.0,
              threshold_full=3.0, message="IQR/median 0.21 after 3 re-measures",
              details={"samples": {"paired ratio": [rng.gauss(2, 0.3) for _ in range(30)]
                                   + [float("nan")]},
                       "samples_unit": "x"}),
        _crit("p1.peak_mem", "pass", 7.5, 10, unit="bytes", better="lower",
              value=300 * 2**20, threshold_pass=512 * 2**20, threshold_full=256 * 2**20),
        _crit("p1.gpu_vs_cpu", "skipped", 0, 0, gpu=True, task=6,
              message="needs an NVIDIA GPU"),
        _crit("p1.profile_ops", "error", 0, 5, task=5, value=float("nan"),
              threshold_pass=None, message="KeyError: 'self_cpu_time_total'",
              details={"samples": "not a dict", "ratio": float("inf")}),
        _crit("p1.report_written", "fail", 0, 5, task=7, unit="ms", better="equal",
              value=float("inf"), threshold_pass=None, threshold_full=None),
    ]
    args = dict(phase=1, impl="starter", submission="phase1_basics/starter", profile="cpu",
                fingerprint={"cpu_model": "Test CPU", "cores": 2, "isa": ["avx2", "avx512f"],
                             "gpu": None, "torch": "2.4.0", "python": "3.11.2"},
                started_at="2024-01-01T00:00:00+00:00", duration_s=12.6, criteria=criteria,
                grader_errors=[])
    args.update(kw)
    return GradeRun(**args)


# ## console ##################################################################################

def test_console_lists_every_criterion_verdict_and_totals():
    run = make_run()
    text = format_console(run)
    for c in run.criteria:
        assert c.id in text
    for label in ("PASS", "FAIL", "INCONCLUSIVE", "SKIPPED", "ERROR"):
        assert label in text
    assert ("Phase 1 (impl starter, profile cpu): 17.5 / 50 points — 2 passed, 2 failed, "
            "1 inconclusive, 1 skipped, 1 error") in text
    assert "≥ 2.0x (full 3.0x)" in text
    assert "≤ 10% (full 5%)" in text
    assert "≤ 1e-4" in text
    assert "300 MiB" in text
    assert "7.5/10" in text
    assert "nan" in text and "inf" in text
    assert "What to do next" in text and "Skipped" in text
    assert "needs an NVIDIA GPU" in text
    assert text.count("too noisy to decide") == 1
    assert "Test CPU" in text and "2 cores" in text
    assert "Grader errors" not in text
    # the table respects the width; long messages are cut in the console
    table = text.split("What to do next")[0]
    assert all(len(line) <= 110 for line in table.splitlines())
    assert len(text) < 8000


def test_console_next_steps_in_table_order_without_passes():
    text = format_console(make_run())
    steps = text.split("What to do next")[1].split("Skipped")[0]
    order = [steps.index(cid) for cid in
             ("p1.latency_matches", "p1.batch_speedup", "p1.profile_ops", "p1.report_written")]
    assert order == sorted(order)
    assert "p1.formats_agree" not in steps and "p1.gpu_vs_cpu" not in steps
    assert "IMPLEMENTATION_GUIDE.md" in steps


def test_console_grader_errors_and_empty_run():
    run = make_run(criteria=[], grader_errors=["could not import the phase's criteria"],
                   fingerprint={})
    text = format_console(run)
    assert "Grader errors (exit 2)" in text
    assert "could not import" in text
    assert "0 / 0 points" in text
    assert "no criteria" in text
    assert "Machine:" in text


# ## results.json #############################################################################

REQUIRED_KEYS = {"id", "description", "task", "guide_section", "metric", "value", "threshold",
                 "unit", "verdict", "points", "max_points", "required", "message", "hint",
                 "details", "duration_s", "gpu"}
TOP_KEYS = {"schema_version", "phase", "impl", "submission", "profile", "quick", "fingerprint",
            "started_at", "duration_s", "points", "max_points", "exit_code", "grader_errors",
            "benchmark_json", "criteria"}


def test_results_json_keys_and_round_trip(tmp_path):
    run = make_run(benchmark_json="out/benchmark.json", quick=True)
    path = write_results_json(run, tmp_path / "sub" / "results.json")
    data = _strict_load(path)  # NaN/inf written as null
    assert TOP_KEYS <= set(data)
    assert data["schema_version"] == 1
    assert data["points"] == 17.5 and data["exit_code"] == 2
    for entry in data["criteria"]:
        assert REQUIRED_KEYS <= set(entry)
        assert set(entry["threshold"]) == {"pass", "full", "better"}
    by_id = {e["id"]: e for e in data["criteria"]}
    assert by_id["p1.profile_ops"]["value"] is None
    assert by_id["p1.profile_ops"]["details"]["ratio"] is None
    assert by_id["p1.batch_speedup"]["details"]["samples"]["paired ratio"][-1] is None
    assert by_id["p1.batch_speedup"]["threshold"] == {"pass": 2.0, "full": 3.0, "better": "higher"}
    assert by_id["p1.formats_agree"]["description"] == "Title of p1.formats_agree"
    assert by_id["p1.formats_agree"]["guide_section"] == GUIDE

    back = read_results_json(path)
    assert [c.id for c in back.criteria] == [c.id for c in run.criteria]
    assert back.points == run.points and back.max_points == run.max_points
    assert back.exit_code == run.exit_code and back.quick is True
    assert back.benchmark_json == "out/benchmark.json"
    for a, b in zip(run.criteria, back.criteria):
        for field in ("title", "phase", "task", "guide", "metric", "unit", "better", "verdict",
                      "points", "max_points", "required", "threshold_pass", "threshold_full",
                      "message", "hint", "gpu"):
            assert getattr(a, field) == getattr(b, field), field
        if a.value is not None and math.isfinite(a.value):
            assert b.value == a.value
        else:
            assert b.value is None


def test_read_results_json_rejects_unknown_schema(tmp_path):
    p = tmp_path / "results.json"
    p.write_text(json.dumps({"schema_version": 99, "criteria": []}))
    with pytest.raises(ValueError, match="schema_version"):
        read_results_json(p)


# ## Gradescope ###############################################################################

def test_gradescope_format(tmp_path):
    run = make_run()
    data = _strict_load(write_gradescope_json(run, tmp_path / "gradescope_results.json"))
    assert set(data) == {"score", "execution_time", "output", "output_format", "visibility",
                         "stdout_visibility", "tests"}
    assert isinstance(data["score"], float) and data["score"] == run.points
    assert data["score"] == sum(t["score"] for t in data["tests"])
    assert isinstance(data["execution_time"], int) and data["execution_time"] == 13
    assert data["output_format"] == "text" and data["visibility"] == "visible"
    assert "17.5 / 50 points" in data["output"]
    assert len(data["tests"]) == len(run.criteria)
    expected = {"pass": "passed", "fail": "failed", "inconclusive": "failed", "error": "failed",
                "skipped": "passed"}
    for c, t in zip(run.criteria, data["tests"]):
        assert set(t) == {"name", "number", "score", "max_score", "status", "output",
                          "output_format", "tags", "visibility"}
        assert t["name"] == f"{c.id}: {c.title}"
        assert t["number"] == c.id
        assert t["status"] == expected[c.verdict]
        assert t["tags"][0] == f"task {c.task}"
        assert ("gpu" in t["tags"]) == c.gpu
        assert t["visibility"] == "visible" and t["output_format"] == "text"
        if c.verdict == "skipped":
            assert t["max_score"] == 0 and t["score"] == 0
            assert t["output"] == "SKIPPED: needs an NVIDIA GPU"
        else:
            assert t["max_score"] == c.max_points and t["score"] == c.points
            assert c.verdict.upper() in t["output"]
    latency = data["tests"][1]["output"]
    assert "≤ 10% (full 5%)" in latency and "Synchronize" in latency


# ## report.md and plots ######################################################################

def test_markdown_report_with_valid_plots(tmp_path):
    from matplotlib.image import imread

    run = make_run()
    report = write_markdown_report(run, tmp_path / "out")
    text = report.read_text(encoding="utf-8")
    assert report.name == "report.md"
    assert text.startswith("# Phase 1 grade report")
    assert "| id | criterion | value | target | verdict | points |" in text
    for c in run.criteria:
        assert f"`{c.id}`" in text
    assert "Test CPU" in text and "## Machine" in text
    assert GUIDE in text

    embedded = [line.split("](")[1].rstrip(")") for line in text.splitlines()
                if line.startswith("![")]
    assert "plots/points.png" in embedded
    assert f"plots/{plot_filename('p1.latency_matches')}" in embedded
    assert f"plots/{plot_filename('p1.batch_speedup')}" in embedded
    assert plot_filename("p1.latency_matches") == "p1_latency_matches.png"
    for rel in embedded:
        png = report.parent / rel
        assert png.is_file()
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert imread(png).ndim == 3

    # bad samples are logged, not raised, and no PNG is claimed for them
    assert "## Plot problems" in text and "p1.profile_ops" in text.split("## Plot problems")[1]
    assert not (report.parent / "plots" / "p1_profile_ops.png").exists()
    # key figures: scalars kept, long lists skipped
    assert "| iqr_over_median | 0.04 |" in text
    assert "long_list" not in text


def test_write_all_and_empty_run(tmp_path):
    paths = write_all(make_run(), tmp_path / "a" / "b")
    assert set(paths) == {"results", "gradescope", "report"}
    assert all(p.is_file() for p in paths.values())
    assert paths["results"].name == "results.json"
    assert paths["gradescope"].name == "gradescope_results.json"

    empty = make_run(criteria=[], fingerprint={}, grader_errors=["boom"], duration_s=float("nan"))
    paths = write_all(empty, tmp_path / "empty")
    assert _strict_load(paths["results"])["criteria"] == []
    gs = _strict_load(paths["gradescope"])
    assert gs["score"] == 0 and gs["tests"] == [] and gs["execution_time"] == 0
    text = paths["report"].read_text(encoding="utf-8")
    assert "no criteria were graded" in text and "boom" in text


def test_guide_link_is_relative_when_guide_exists(tmp_path):
    root = tmp_path / "repo"
    (root / "phase1_basics").mkdir(parents=True)
    (root / "phase1_basics" / "IMPLEMENTATION_GUIDE.md").write_text("# guide\n")
    out = root / "grades" / "phase1"
    text = write_markdown_report(make_run(), out, repo_root=root).read_text(encoding="utf-8")
    assert f"[{GUIDE}](../../{GUIDE})" in text


def test_console_wraps_long_titles_instead_of_cutting_them():
    long = "Every model format gives the eager outputs within tolerance on fresh inputs"
    run = make_run(criteria=[_crit("p1.formats_agree", "pass", 10, 10, title=long, value=1.0, threshold_pass=1.0)])
    text = format_console(run, width=90)
    table = text[text.index("criterion"):]
    words = [w for line in table.splitlines() for w in line.split()]
    for w in long.split():
        assert w in words, (w, table)  # every word whole, somewhere in the (wrapped) row
    assert "…" not in table.split("\n\n")[0]
