"""The starter and the reference expose the same API; every stub points at a real guide section."""
from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from .impl import HAS_REFERENCE

if not HAS_REFERENCE:
    pytest.skip("no reference solution in this copy (learner release)", allow_module_level=True)

from phase1_basics import reference, starter  # noqa: E402

ROOT = Path(__file__).resolve().parents[2] / "phase1_basics"
GUIDE = ROOT / "IMPLEMENTATION_GUIDE.md"
REFERENCE_HEADER = "# REFERENCE SOLUTION: excluded from the learner release (make release)."

#: The exercises: public function -> task number. Everything else public is a helper.
EXERCISES = {
    "load_predictor": 1,
    "summarize_latencies": 2, "measure_latency": 2,
    "measure_throughput": 3,
    "parameter_bytes": 4, "peak_memory_during": 4,
    "top_operators": 5,
    "compare_devices": 6,
    "write_report": 7,
}
ANCHORS = {
    1: "task-11-load-a-model-in-any-format", 2: "task-12-latency-measurement",
    3: "task-13-throughput-against-batch-size", 4: "task-14-memory-profiling",
    5: "task-15-per-operator-profile", 6: "task-16-cpu-versus-gpu", 7: "task-17-performance-report",
}
#: Every public name -> the task it belongs to (its tests carry that task's marker).
TASK_OF = {**EXERCISES, "KINDS": 1, "Predictor": 1, "MIN_SAMPLES": 2, "LatencyStats": 2, "device_sync": 2,
           "ThroughputPoint": 3, "MemoryReport": 4, "OpStat": 5, "DeviceResult": 6, "DEVICES": 6,
           "ReportPaths": 7, "environment_info": 7}
HELPERS = ["Predictor", "device_sync", "environment_info"]
ALL_TASKS = [getattr(pytest.mark, f"phase1_task{n}") for n in range(1, 8)]


def per_task(names):
    """Parametrize over public names, each case marked with its own task's marker."""
    return [pytest.param(n, TASK_OF[n], marks=getattr(pytest.mark, f"phase1_task{TASK_OF[n]}"), id=n)
            for n in names]


def every_task(test):
    """Structural checks that concern every task carry all seven markers."""
    for mark in ALL_TASKS:
        test = mark(test)
    return test


def _slug(heading: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _guide_anchors() -> set[str]:
    return {_slug(line.lstrip("#")) for line in GUIDE.read_text().splitlines() if line.startswith("#")}


@every_task
def test_same_public_names():
    assert starter.__all__ == reference.__all__
    assert set(TASK_OF) == set(starter.__all__)
    assert set(EXERCISES) <= set(starter.__all__)
    for name in starter.__all__:
        assert hasattr(starter, name) and hasattr(reference, name), name


@pytest.mark.parametrize("name, task", per_task(starter.__all__))
def test_same_signatures(name, task):
    ours, theirs = getattr(starter, name), getattr(reference, name)
    if inspect.isfunction(ours) or inspect.isclass(ours):
        assert inspect.signature(ours) == inspect.signature(theirs), name
        assert inspect.getdoc(ours) == inspect.getdoc(theirs), f"{name}: the docstring contracts differ"
    else:
        assert ours == theirs, name


@pytest.mark.parametrize("name, task", per_task(HELPERS))
def test_helpers_are_identical(name, task):
    assert inspect.getsource(getattr(starter, name)) == inspect.getsource(getattr(reference, name))


@every_task
def test_types_module_is_identical():
    ours = (ROOT / "starter" / "types.py").read_text()
    theirs = (ROOT / "reference" / "types.py").read_text()
    assert theirs == REFERENCE_HEADER + "\n" + ours


@pytest.mark.parametrize("name, task", per_task(EXERCISES))
def test_every_stub_raises_with_its_task_and_anchor(name, task):
    fn = getattr(starter, name)
    args = [None for p in inspect.signature(fn).parameters.values()
            if p.default is inspect.Parameter.empty and p.kind is p.POSITIONAL_OR_KEYWORD]
    with pytest.raises(NotImplementedError) as info:
        fn(*args)
    message = str(info.value)
    assert message == f"Task 1.{task}: see IMPLEMENTATION_GUIDE.md#{ANCHORS[task]}"


@pytest.mark.parametrize("name, task", per_task(EXERCISES))
def test_every_exercise_docstring_is_a_contract(name, task):
    doc = inspect.getdoc(getattr(starter, name))
    for part in ("Args:", "Returns:", "Tolerance the grader applies", f"IMPLEMENTATION_GUIDE.md#{ANCHORS[task]}"):
        assert part in doc, f"{name}: docstring lacks {part!r}"


@every_task
def test_every_anchor_in_the_code_is_a_guide_heading():
    anchors = _guide_anchors()
    used = set()
    for path in sorted((ROOT / "starter").glob("*.py")) + sorted((ROOT / "reference").glob("*.py")):
        used |= set(re.findall(r"IMPLEMENTATION_GUIDE\.md#([\w-]+)", path.read_text()))
    assert used == set(ANCHORS.values())
    assert used <= anchors, f"missing headings: {sorted(used - anchors)}"


@every_task
def test_guide_has_the_seven_sections_in_order():
    sections = [line[3:].strip() for line in GUIDE.read_text().splitlines() if line.startswith("## ")]
    assert sections == ["What", "Why", "How", "Key concepts", "Common pitfalls", "Testing strategy",
                        "Performance expectations"]


@every_task
def test_every_starter_exercise_has_a_task_banner():
    for task in range(1, 8):
        banners = [p for p in (ROOT / "starter").glob("*.py") if f"# ## Task 1.{task}" in p.read_text()]
        assert len(banners) == 1, f"Task 1.{task}: banners in {banners}"


@every_task
def test_reference_files_carry_the_release_header():
    for path in sorted((ROOT / "reference").glob("*.py")):
        assert path.read_text().splitlines()[0] == REFERENCE_HEADER, path.name
    for path in sorted((ROOT / "starter").glob("*.py")):
        assert "REFERENCE SOLUTION" not in path.read_text(), path.name


@every_task
def test_modules_stay_small():
    for path in sorted(ROOT.rglob("*.py")):
        assert len(path.read_text().splitlines()) < 400, path
