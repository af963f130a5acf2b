"""The starter and the reference expose the same quantization API; every stub points at a real guide section."""
from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from .impl import HAS_REFERENCE

if not HAS_REFERENCE:
    pytest.skip("no reference solution in this copy (learner release)", allow_module_level=True)

from phase2_optimization.reference import quantization as reference  # noqa: E402
from phase2_optimization.starter import quantization as starter  # noqa: E402

PHASE = Path(__file__).resolve().parents[2] / "phase2_optimization"
GUIDE = PHASE / "QUANTIZATION_GUIDE.md"
REFERENCE_HEADER = "# REFERENCE SOLUTION: excluded from the learner release (make release)."
ANCHORS = {1: "task-21-affine-quantization-math", 2: "task-22-calibration-observers",
           3: "task-23-dynamic-and-weight-only-int8", 4: "task-24-static-int8-post-training-quantization",
           5: "task-25-half-precision", 6: "task-26-accuracy-versus-speed-trade-off"}
#: The exercises: "name" or "Class.method" -> task.
EXERCISES = {
    "compute_qparams": 1, "quantize": 1, "dequantize": 1, "fake_quantize": 1, "sqnr_db": 1, "relative_error": 1,
    "MinMaxObserver.observe": 2, "MovingAverageMinMaxObserver.observe": 2, "PercentileObserver.compute_range": 2,
    "HistogramMSEObserver.compute_range": 2,
    "Int8WeightOnlyLinear.from_float": 3, "Int8WeightOnlyLinear.forward": 3, "Int8DynamicLinear.forward": 3,
    "quantize_linears": 3, "torch_dynamic_int8": 3,
    "TensorCalibrationReader.__init__": 4, "TensorCalibrationReader.get_next": 4, "quantize_static_onnx": 4,
    "quantize_static_fx": 4,
    "precision_support": 5, "to_half_precision": 5,
    "build_variant": 6, "pareto_front": 6, "plot_pareto": 6, "run_tradeoff_study": 6,
}
#: Written in full, identical in starter and reference.
HELPERS = ["along_axis", "per_channel_view", "RunningHistogram", "RangeObserver", "int_matmul", "export_fp32_onnx",
           "onnx_quant_summary", "quantized_module_count", "state_dict_bytes", "HalfPrecisionModel",
           "torch_predictor", "ort_predictor", "top1_accuracy", "median_latency_ms", "tradeoff_markdown",
           "cpu_flags", "cpu_has_int8_dot_product", "resolve_reduce_range"]
ALL_TASKS = [getattr(pytest.mark, f"phase2_task{n}") for n in range(1, 7)]


def every_task(test):
    for mark in ALL_TASKS:
        test = mark(test)
    return test


def _get(module, qualname):
    obj = module
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def _slug(heading: str) -> str:
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _files(kind: str) -> list[Path]:
    return sorted((PHASE / kind / "quantization").glob("*.py"))


@every_task
def test_same_public_names():
    assert starter.__all__ == reference.__all__
    assert len(set(starter.__all__)) == len(starter.__all__)
    for name in starter.__all__:
        assert hasattr(starter, name) and hasattr(reference, name), name
    assert {e.split(".")[0] for e in EXERCISES} <= set(starter.__all__)


@every_task
def test_no_name_clash_with_the_compilation_half():
    from phase2_optimization.reference import compilation

    assert not set(reference.__all__) & set(compilation.__all__)


@pytest.mark.parametrize("name", [n for n in reference.__all__])
def test_same_signatures_and_docstrings(name):
    ours, theirs = getattr(starter, name), getattr(reference, name)
    if inspect.isclass(ours) and issubclass(ours, BaseException):
        assert inspect.getdoc(ours) == inspect.getdoc(theirs), name
    elif inspect.isfunction(ours) or inspect.isclass(ours):
        assert inspect.signature(ours) == inspect.signature(theirs), name
        assert inspect.getdoc(ours) == inspect.getdoc(theirs), f"{name}: the docstring contracts differ"
    if inspect.isclass(ours):
        for attr, member in vars(theirs).items():
            if inspect.isfunction(member) or isinstance(member, classmethod):
                mine = vars(ours)[attr]
                f, g = getattr(mine, "__func__", mine), getattr(member, "__func__", member)
                assert inspect.signature(f) == inspect.signature(g), f"{name}.{attr}"
                assert inspect.getdoc(f) == inspect.getdoc(g), f"{name}.{attr}: docstrings differ"
    elif not callable(ours):
        assert repr(ours) == repr(theirs), name   # constants (QuantSpec instances compare by class)


@pytest.mark.parametrize("name", HELPERS)
def test_helpers_are_identical(name):
    assert inspect.getsource(getattr(starter, name)) == inspect.getsource(getattr(reference, name))


@every_task
@pytest.mark.parametrize("module", ["types.py", "hardware.py", "__init__.py"])
def test_shared_modules_are_identical(module):
    ours = (PHASE / "starter" / "quantization" / module).read_text()
    theirs = (PHASE / "reference" / "quantization" / module).read_text()
    assert theirs == REFERENCE_HEADER + "\n" + ours


def _call_stub(qualname):
    obj = _get(starter, qualname)
    cls_name, _, meth = qualname.rpartition(".")
    if not cls_name:
        n = sum(p.default is inspect.Parameter.empty and p.kind is p.POSITIONAL_OR_KEYWORD
                for p in inspect.signature(obj).parameters.values())
        return obj(*[None] * n)
    cls = getattr(starter, cls_name)
    raw = vars(cls)[meth]
    fn = getattr(raw, "__func__", raw)
    params = [p for p in inspect.signature(fn).parameters.values()
              if p.default is inspect.Parameter.empty and p.kind is p.POSITIONAL_OR_KEYWORD]
    first = cls if isinstance(raw, classmethod) else object.__new__(cls)
    return fn(first, *[None] * (len(params) - 1))


@pytest.mark.parametrize("qualname, task", [pytest.param(k, v, marks=getattr(pytest.mark, f"phase2_task{v}"), id=k)
                                            for k, v in EXERCISES.items()])
def test_every_stub_raises_with_its_task_and_anchor(qualname, task):
    with pytest.raises(NotImplementedError) as info:
        _call_stub(qualname)
    assert str(info.value) == f"Task 2.{task}: see QUANTIZATION_GUIDE.md#{ANCHORS[task]}"


@pytest.mark.parametrize("qualname, task", [pytest.param(k, v, marks=getattr(pytest.mark, f"phase2_task{v}"), id=k)
                                            for k, v in EXERCISES.items()])
def test_every_exercise_docstring_is_a_contract(qualname, task):
    doc = inspect.getdoc(_get(starter, qualname))
    for part in ("Returns:", "Tolerance the grader applies", f"QUANTIZATION_GUIDE.md#{ANCHORS[task]}"):
        assert part in doc, f"{qualname}: docstring lacks {part!r}"
    fn = _get(starter, qualname)
    if [p for p in inspect.signature(fn).parameters if p not in ("self", "cls")]:
        assert "Args:" in doc, f"{qualname}: docstring lacks 'Args:'"


@every_task
def test_every_anchor_in_the_code_is_a_guide_heading():
    anchors = {_slug(line.lstrip("#")) for line in GUIDE.read_text().splitlines() if line.startswith("#")}
    used = set()
    for path in _files("starter") + _files("reference"):
        used |= set(re.findall(r"QUANTIZATION_GUIDE\.md#([\w-]+)", path.read_text()))
    assert used == set(ANCHORS.values())
    assert used <= anchors, f"missing headings: {sorted(used - anchors)}"


@every_task
def test_guide_has_the_seven_sections_in_order():
    sections = [line[3:].strip() for line in GUIDE.read_text().splitlines() if line.startswith("## ")]
    assert sections == ["What", "Why", "How", "Key concepts", "Common pitfalls", "Testing strategy",
                        "Performance expectations"]
    text = GUIDE.read_text()
    for task in range(1, 7):
        assert f"make grade PHASE=2 TASK={task}" in text


@every_task
def test_every_starter_exercise_file_has_its_task_banner():
    for task in range(1, 7):
        banners = [p.name for p in _files("starter") if f"# ## Task 2.{task}" in p.read_text()]
        assert banners, f"Task 2.{task}: no banner"


@every_task
def test_reference_files_carry_the_release_header():
    for path in _files("reference"):
        assert path.read_text().splitlines()[0] == REFERENCE_HEADER, path.name
    for path in _files("starter"):
        assert "REFERENCE SOLUTION" not in path.read_text(), path.name


@every_task
def test_modules_stay_small():
    for path in _files("starter") + _files("reference"):
        assert len(path.read_text().splitlines()) < 400, path
