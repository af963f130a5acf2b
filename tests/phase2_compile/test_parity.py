"""The starter and the reference expose the same compilation API; every stub points at a real guide section."""
from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from .impl import HAS_REFERENCE

if not HAS_REFERENCE:
    pytest.skip("no reference solution in this copy (learner release)", allow_module_level=True)

from phase2_optimization.reference import compilation as reference  # noqa: E402
from phase2_optimization.starter import compilation as starter  # noqa: E402

PHASE = Path(__file__).resolve().parents[2] / "phase2_optimization"
GUIDE = PHASE / "COMPILATION_GUIDE.md"
REFERENCE_HEADER = "# REFERENCE SOLUTION: excluded from the learner release (make release)."
STARTER, REF = PHASE / "starter" / "compilation", PHASE / "reference" / "compilation"

#: The exercises: public function -> task number. Everything else public is a helper.
EXERCISES = {
    "export_onnx": 7, "check_onnx": 7, "compare_with_pytorch": 7,
    "fold_conv_bn": 8, "fold_batchnorm": 8, "fold_batchnorm_onnx": 8, "fold_constants": 8, "remove_noops": 8,
    "optimize_graph": 8,
    "make_session": 9, "benchmark_sessions": 9, "fastest_session": 9,
    "compile_model": 10, "compile_and_warm_up": 10,
    "make_calibrator": 11, "build_engine": 11, "load_engine": 11, "run_engine": 11,
}
ANCHORS = {7: "task-27-export-to-onnx-with-a-dynamic-batch", 8: "task-28-graph-optimizations-by-hand",
           9: "task-29-onnx-runtime-sessions", 10: "task-210-torchcompile", 11: "task-211-tensorrt"}
#: Every public name -> the task it belongs to (its tests carry that task's marker).
TASK_OF = {**EXERCISES, "ExportConfig": 7, "OnnxInfo": 7, "ExportComparison": 7, "GraphReport": 8, "count_ops": 8,
           "ORT_LEVELS": 9, "SessionConfig": 9, "SessionTiming": 9, "COMPILE_MODES": 10, "CompileConfig": 10,
           "CompileResult": 10, "graphs_compiled": 10, "TRT_PRECISIONS": 11, "TRTConfig": 11,
           "tensorrt_available": 11, "TRTBatchReader": 11, "TRTRunner": 11}
HELPERS = ["count_ops", "graphs_compiled", "tensorrt_available", "TRTBatchReader", "TRTRunner"]
PRIVATE_HELPERS = {"graph.py": ["_consumers", "_prune_initializers", "_rename", "_replace_node_list",
                                "_scalar_constant"], "trt_engine.py": ["_trt_logger"]}
ALL_TASKS = [getattr(pytest.mark, f"phase2_task{n}") for n in ANCHORS]


def per_task(names):
    return [pytest.param(n, TASK_OF[n], marks=getattr(pytest.mark, f"phase2_task{TASK_OF[n]}"), id=n) for n in names]


def every_task(test):
    for mark in ALL_TASKS:
        test = mark(test)
    return test


def _slug(heading: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@every_task
def test_same_public_names():
    assert starter.__all__ == reference.__all__
    assert set(TASK_OF) == set(starter.__all__)
    for name in starter.__all__:
        assert hasattr(starter, name) and hasattr(reference, name), name


@every_task
def test_no_name_clashes_with_the_quantization_half():
    """The phase package re-exports both halves with ``import *``: a shared name would shadow one."""
    from phase2_optimization.starter import quantization

    assert not set(starter.__all__) & set(quantization.__all__)


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
def test_private_helpers_and_types_are_identical():
    import importlib

    for file, names in PRIVATE_HELPERS.items():
        mod = file[:-3]
        ours = importlib.import_module(f"phase2_optimization.starter.compilation.{mod}")
        theirs = importlib.import_module(f"phase2_optimization.reference.compilation.{mod}")
        for n in names:
            assert inspect.getsource(getattr(ours, n)) == inspect.getsource(getattr(theirs, n)), n
    assert (REF / "types.py").read_text() == REFERENCE_HEADER + "\n" + (STARTER / "types.py").read_text()


@pytest.mark.parametrize("name, task", per_task(EXERCISES))
def test_every_stub_raises_with_its_task_and_anchor(name, task):
    fn = getattr(starter, name)
    args = [None for p in inspect.signature(fn).parameters.values()
            if p.default is inspect.Parameter.empty and p.kind is p.POSITIONAL_OR_KEYWORD]
    with pytest.raises(NotImplementedError) as info:
        fn(*args)
    assert str(info.value) == f"Task 2.{task}: see COMPILATION_GUIDE.md#{ANCHORS[task]}"


@pytest.mark.parametrize("name, task", per_task(EXERCISES))
def test_every_exercise_docstring_is_a_contract(name, task):
    doc = inspect.getdoc(getattr(starter, name))
    for part in ("Args:", "Returns:", "Tolerance the grader applies", f"COMPILATION_GUIDE.md#{ANCHORS[task]}"):
        assert part in doc, f"{name}: docstring lacks {part!r}"


@every_task
def test_every_anchor_in_the_code_is_a_guide_heading():
    anchors = {_slug(line.lstrip("#")) for line in GUIDE.read_text().splitlines() if line.startswith("#")}
    used = set()
    for path in sorted(STARTER.glob("*.py")) + sorted(REF.glob("*.py")):
        used |= set(re.findall(r"COMPILATION_GUIDE\.md#([\w-]+)", path.read_text()))
    assert used == set(ANCHORS.values())
    assert used <= anchors, f"missing headings: {sorted(used - anchors)}"


@every_task
def test_guide_has_the_seven_sections_in_order():
    sections = [line[3:].strip() for line in GUIDE.read_text().splitlines() if line.startswith("## ")]
    assert sections == ["What", "Why", "How", "Key concepts", "Common pitfalls", "Testing strategy",
                        "Performance expectations"]


@every_task
def test_guide_names_every_criterion_of_the_half():
    from graders.outcomes import load_outcomes

    text = GUIDE.read_text()
    ids = [c for c in load_outcomes(2).criteria if c.startswith("p2.c_")]
    assert ids and all(f"`{c}`" in text for c in ids), [c for c in ids if f"`{c}`" not in text]


@every_task
def test_every_starter_exercise_has_a_task_banner():
    for task in ANCHORS:
        banners = [p for p in STARTER.glob("*.py") if f"# ## Task 2.{task}" in p.read_text()]
        assert len(banners) == 1, f"Task 2.{task}: banners in {banners}"


@every_task
def test_reference_files_carry_the_release_header():
    for path in sorted(REF.glob("*.py")):
        assert path.read_text().splitlines()[0] == REFERENCE_HEADER, path.name
    for path in sorted(STARTER.glob("*.py")):
        assert "REFERENCE SOLUTION" not in path.read_text(), path.name


@every_task
def test_modules_stay_small():
    for path in sorted(STARTER.glob("*.py")) + sorted(REF.glob("*.py")):
        assert len(path.read_text().splitlines()) < 400, path
