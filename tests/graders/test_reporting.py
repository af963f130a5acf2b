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


# ## wrapping, never cutting (issue 18) #######################################################

def test_wrap_text_keeps_every_character_within_the_width():
    from graders.reporting._format import wrap_text

    text = "see phase3_advanced/DYNAMIC_BATCHING_GUIDE.md#task-32-robustness for p2.compilation.export_dynamic_batch"
    for width in (8, 15, 28, 40, 200):
        lines = wrap_text(text, width)
        assert all(len(line) <= width for line in lines), (width, lines)
        assert "".join("".join(lines).split()) == "".join(text.split())  # nothing lost, nothing added
        assert "…" not in "".join(lines)
    assert wrap_text("p2.compilation.compile_speedup_cuda", 28) == ["p2.compilation.", "compile_speedup_cuda"]
    assert wrap_text("", 10) == [""]


def test_console_wraps_every_cell_and_message_instead_of_cutting():
    long_title = "Dynamic batching multiplies throughput without changing a single answer under load"
    message = ("closed loop p99 41.2 ms within the bound of phase3_advanced/DYNAMIC_BATCHING_GUIDE.md#task-31-dynamic-batcher "
               "measured over 2000 requests with sixteen concurrent clients and extraordinarily_long_identifier_words")
    crit = _crit("p2.compilation.export_dynamic_batch", "fail", 0, 10, title=long_title, value=123456.789,
                 unit="samples/s", threshold_pass=200000.0, threshold_full=400000.0, message=message,
                 hint="Merge requests until max_batch_size or max_queue_delay_ms, whichever comes first.")
    skipped = _crit("p1.gpu_vs_cpu", "skipped", 0, 0, message="needs an NVIDIA GPU: " + "torch.cuda.is_available() " * 8)
    for width in (80, 90, 110):
        text = format_console(make_run(criteria=[crit, skipped]), width=width)
        assert "…" not in text
        body = text.split("\nPhase 1 (")[0]  # the totals line is one line on purpose
        assert all(len(line) <= width for line in body.splitlines()), (width, body)
        words = set(text.split())
        for w in (long_title + " " + crit.hint).split():
            assert w in words, (width, w)
        squeezed = "".join(text.split())
        for w in message.split() + ["p2.compilation.export_dynamic_batch", "123457samples/s"]:
            assert w in squeezed, (width, w)


# ## next steps for partial credit #############################################################

def _partial_run() -> GradeRun:
    partial = _crit("p3.batching.latency_bound", "pass", 6, 10, unit="%", better="lower", value=80.0,
                    threshold_pass=100.0, threshold_full=60.0, message="p99 41.2 ms against a bound of 51.5 ms",
                    hint="6/10: full marks at <= 60%, measured 80% (20% to go). Dispatch a full batch at once. "
                         f"(guide: {GUIDE})")
    bare = _crit("p3.batching.speedup", "pass", 12, 20, value=2.9, threshold_pass=2.5, threshold_full=3.5)
    failed = _crit("p3.batching.backpressure", "fail", 0, 10, unit="ms", better="lower", value=9.0,
                   threshold_pass=5.0, threshold_full=1.0, message="submit() p99 9 ms",
                   hint="Refuse with Overloaded instead of blocking in submit().")
    full = _crit("p3.batching.correct_under_load", "pass", 15, 15, unit="", better="lower", value=0.0,
                 threshold_pass=0.0, threshold_full=0.0)
    return make_run(phase=3, criteria=[partial, bare, failed, full])


def test_console_tells_how_to_reach_full_marks_for_every_partial_pass():
    text = format_console(_partial_run())
    steps = text.split("What to do next")[1]
    steps_text = " ".join(steps.split())
    assert "p3.batching.correct_under_load" not in steps  # full marks: nothing to do
    assert "p3.batching.latency_bound [PASS 6/10]" in steps_text
    assert "to reach full marks: 6/10: full marks at <= 60%" in steps_text
    assert "Dispatch a full batch at once." in steps_text
    # a partial pass with no hint still says where full marks start, and links the guide
    assert "p3.batching.speedup [PASS 12/20]" in steps_text
    assert "to reach full marks: 12/20: full marks at ≥ 3.5x, measured 2.9x." in steps_text
    assert f"(guide: {GUIDE})" in steps_text
    assert "hint: Refuse with Overloaded instead of blocking in submit()." in steps_text


def test_report_tells_how_to_reach_full_marks_for_every_partial_pass(tmp_path):
    text = write_markdown_report(_partial_run(), tmp_path).read_text(encoding="utf-8")
    todo = text.split("## What to do next")[1].split("\n## ")[0]
    assert "p3.batching.correct_under_load" not in todo
    assert "- `p3.batching.latency_bound` **PASS 6/10, to reach full marks**: 6/10: full marks at <= 60%" in todo
    assert "Dispatch a full batch at once." in todo
    assert "- `p3.batching.speedup` **PASS 12/20, to reach full marks**: 12/20: full marks at ≥ 3.5x" in todo
    assert "- `p3.batching.backpressure` **FAIL**: Refuse with Overloaded" in todo
    detail = text.split("## Criteria in detail")[1]
    sections = {s.split("`")[0]: s for s in detail.split("### `")[1:]}
    assert "**To reach full marks:** 6/10: full marks at <= 60%" in sections["p3.batching.latency_bound"]
    assert "**To reach full marks:** 12/20" in sections["p3.batching.speedup"]
    assert "**Hint:** Refuse with Overloaded" in sections["p3.batching.backpressure"]
    assert "**Hint:**" not in sections["p3.batching.correct_under_load"]
    assert "To reach full marks" not in sections["p3.batching.correct_under_load"]


# ## plots: marks, ranges, log axes, stale files ################################################

def _latency_bound(**details) -> CriterionResult:
    rng = random.Random(3)
    base = {"samples": {"closed-loop latency ms": [rng.uniform(4, 9) for _ in range(300)],
                        "poisson latency ms": [rng.uniform(2, 25) for _ in range(100)]},
            "samples_unit": "ms", "bound_ms": 50.3,
            "sample_marks": {"bound": 50.3, "pass (100 % of bound)": 50.3, "full marks (60 % of bound)": 30.2}}
    base.update(details)
    return _crit("p3.batching.latency_bound", "pass", 10, 10, phase=3, unit="%", better="lower", value=49.7,
                 threshold_pass=100.0, threshold_full=60.0, details=base)


def test_sample_marks_are_drawn_and_the_axis_reaches_them(tmp_path):
    from matplotlib.image import imread

    from graders.reporting.plots import plot_samples, sample_plot_layout

    layout = sample_plot_layout(_latency_bound())
    labels = [label for label, *_ in layout.lines]
    assert labels == ["bound: 50.3 ms", "pass (100 % of bound): 50.3 ms", "full marks (60 % of bound): 30.2 ms"]
    # samples in ms, criterion in %: no %-threshold lines on an ms axis, but the marks stand in for them
    assert not any(label.startswith(("pass 100", "full 60", "measured")) for label in labels)
    lo, hi = layout.xlim
    assert lo < 2 and hi > 50.3  # the samples stop at 25 ms; the bound is still on the axis
    assert layout.log_x is False
    png = plot_samples(_latency_bound(), tmp_path / "lat.png")
    assert imread(png).ndim == 3

    # same unit: threshold lines and marks both count for the range
    c = _crit("p1.p50", "pass", 5, 10, unit="ms", better="lower", value=3.0, threshold_pass=40.0,
              threshold_full=10.0, details={"samples": {"ms": [2.0, 3.0, 4.0]}, "samples_unit": "ms",
                                            "sample_marks": {"budget": 55.0, "nan mark": float("nan")}})
    layout = sample_plot_layout(c)
    assert [label.split()[0] for label, *_ in layout.lines] == ["pass", "full", "measured", "budget:"]
    assert layout.xlim[0] < 2.0 and layout.xlim[1] > 55.0


def test_bad_sample_marks_are_a_plot_problem_not_a_crash(tmp_path):
    run = make_run(criteria=[_latency_bound(sample_marks=[50.3]), _latency_bound(sample_marks={"bound": "far"})])
    run.criteria[1].id = "p3.batching.latency_bound_2"
    text = write_markdown_report(run, tmp_path).read_text(encoding="utf-8")
    problems = text.split("## Plot problems")[1]
    assert "sample_marks" in problems and "p3.batching.latency_bound_2" in problems


def test_backpressure_submit_times_plot_on_a_log_axis(tmp_path):
    from matplotlib.image import imread

    from graders.reporting.plots import plot_samples, sample_plot_layout

    rng = random.Random(5)
    submits = [rng.lognormvariate(-5, 1.2) for _ in range(5000)] + [12.0, 65.2]  # ~7 us ... a 65 ms stall
    c = _crit("p3.batching.backpressure", "pass", 10, 10, phase=3, unit="ms", better="lower", value=0.05,
              threshold_pass=5.0, threshold_full=1.0,
              details={"samples": {"submit() ms during the flood": submits}, "samples_unit": "ms"})
    layout = sample_plot_layout(c)
    assert layout.log_x
    assert [label for label, *_ in layout.lines] == ["pass 5 ms", "full 1 ms", "measured 0.05 ms"]
    assert layout.xlim[0] < min(submits) and layout.xlim[1] > 65.2
    assert imread(plot_samples(c, tmp_path / "bp.png")).ndim == 3
    # a narrow range stays linear
    narrow = _crit("x", "pass", 1, 1, unit="ms", details={"samples": {"a": [1.0, 2.0, 50.0]}, "samples_unit": "ms"})
    assert not sample_plot_layout(narrow).log_x


def test_regrading_into_a_folder_removes_plots_it_did_not_draw(tmp_path):
    out = tmp_path / "grades" / "phase3-reference-this-copy"
    first = write_all(make_run(), out)["report"]
    plots = first.parent / "plots"
    assert (plots / "p1_latency_matches.png").is_file() and (plots / "p1_batch_speedup.png").is_file()
    (plots / "notes.txt").write_text("not ours to delete")

    second = make_run(criteria=[_latency_bound()])
    text = write_all(second, out)["report"].read_text(encoding="utf-8")
    assert sorted(p.name for p in plots.glob("*.png")) == ["p3_batching_latency_bound.png", "points.png"]
    assert (plots / "notes.txt").is_file()
    embedded = [line.split("](")[1].rstrip(")") for line in text.splitlines() if line.startswith("![")]
    assert all((out / rel).is_file() for rel in embedded)

    # a plot that cannot be drawn this time does not leave last time's PNG behind
    write_all(make_run(criteria=[_latency_bound(samples="broken")]), out)
    assert sorted(p.name for p in plots.glob("*.png")) == ["points.png"]


# ## glossary ##################################################################################

def test_report_glossary_explains_every_key_figure(tmp_path):
    from graders.harness.paired import PairedResult
    from graders.harness.stats import summarize
    from graders.reporting.glossary import explain, unexplained
    from graders.reporting.markdown import key_figures

    paired = PairedResult(ratios=summarize([3.0, 3.2, 2.9, 3.1, 3.0]), a_ms=summarize([30.0] * 5),
                          b_ms=summarize([10.0] * 5), attempts=1)
    speed = _crit("p3.batching.speedup", "pass", 20, 20, phase=3, value=3.0, threshold_pass=2.5, threshold_full=3.5,
                  details={**paired.details("unbatched", "batched"), "model_ceiling_x": 4.1, "speedup_x": 3.0,
                           "efficiency_pct": 64.5, "model_b1_samples_s": 900.0, "model_bmax_samples_s": 3690.0,
                           "errors_pct": {"p50": 1.0, "p95": 2.0}, "checks": {"drain answers all": True}})
    flood = _crit("p3.batching.backpressure", "pass", 10, 10, phase=3, unit="ms", value=0.05,
                  details={"sender_lag_p99_ms": 0.4, "rss_growth_mb": 61.8, "submit_max_ms": 65.2,
                           "full_batch_dispatch_ms": 0.3, "lone_dispatch_late_ms": 1.1, "cancelled_computed": 0,
                           "wrong_rows_mishandled": 0, "checks_failed": 0})
    run = make_run(phase=3, criteria=[speed, flood])
    fields = [name for c in run.criteria for name, _ in key_figures(c.details, limit=None)]
    assert "unbatched_median_ms" in fields and "errors_pct.p50" in fields and "ratio_of" in fields
    assert unexplained(fields) == []
    assert explain("errors_pct.p95")[0] == "errors_pct" and explain("bs8_yours_sps")[0] == "bs*_yours_sps"

    text = write_markdown_report(run, tmp_path).read_text(encoding="utf-8")
    glossary = text.split("## Glossary")[1].split("\n## ")[0]
    rows = [line for line in glossary.splitlines() if line.startswith("| `")]
    for name in ("sender_lag_p99_ms", "rss_growth_mb", "submit_max_ms", "model_ceiling_x", "efficiency_pct",
                 "ratio_of", "unbatched_median_ms", "batched_median_ms", "errors_pct.*", "checks.*"):
        assert any(f"`{name}`" in row.split(" | ")[0] for row in rows), name
    assert "no explanation recorded yet" not in glossary
    assert "time unbatched / time batched" in text  # the ratio says what is over what
    # a field nobody explained is listed, marked, and reported by unexplained()
    odd = make_run(criteria=[_crit("p1.x", "pass", 1, 1, details={"mystery_figure_ms": 3.0})])
    text = write_markdown_report(odd, tmp_path / "odd").read_text(encoding="utf-8")
    assert "| `mystery_figure_ms` | (no explanation recorded yet) |" in text
    assert unexplained(["mystery_figure_ms", "rss_growth_mb"]) == ["mystery_figure_ms"]
