"""The starter and the reference expose the same API; every stub points at a real guide section."""
from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
import torch

from .impl import HAS_REFERENCE

if not HAS_REFERENCE:
    pytest.skip("no reference solution in this copy (learner release)", allow_module_level=True)

from phase3_advanced import reference, starter  # noqa: E402
from phase3_advanced.reference import batcher as ref_batcher  # noqa: E402
from phase3_advanced.starter import batcher as st_batcher  # noqa: E402

ROOT = Path(__file__).resolve().parents[2] / "phase3_advanced"
GUIDE = ROOT / "DYNAMIC_BATCHING_GUIDE.md"
REFERENCE_HEADER = "# REFERENCE SOLUTION: excluded from the learner release (make release)."
ANCHORS = {1: "task-31-a-dynamic-batcher", 2: "task-32-robustness", 3: "task-33-concurrent-models",
           4: "task-34-a-load-generator"}

#: The exercises: "function" or "Class.method" -> task.
EXERCISES = {
    "DynamicBatcher.submit": 1, "DynamicBatcher._next_batch": 1, "DynamicBatcher._run_batch": 1,
    "check_request": 2, "DynamicBatcher.close": 2,
    "ModelPool.__init__": 3, "ModelPool.start": 3, "ModelPool.submit": 3, "ModelPool.close": 3,
    "ModelPool.stats": 3,
    "run_closed_loop": 4, "run_poisson": 4,
}
#: Helpers written in full: identical source in the starter and the reference.
HELPER_METHODS = {
    "DynamicBatcher": ["__init__", "start", "__enter__", "__exit__", "stats", "_call_model", "_worker_loop"],
    "ModelPool": ["names", "__enter__", "__exit__"],
}
HELPER_OBJECTS = ["_Request", "_resolve", "_fail", "_Counters"]
#: Every public name -> the task whose tests use it (its checks carry that task's marker).
TASK_OF = {"MIN_SAMPLES": 4, "BatcherConfig": 1, "BatcherStats": 1, "ModelSpec": 3, "LoadReport": 4,
           "BatcherError": 2, "InvalidRequest": 2, "Overloaded": 2, "BatcherClosed": 2, "ModelError": 2,
           "DynamicBatcher": 1, "check_request": 2, "ModelPool": 3, "run_closed_loop": 4, "run_poisson": 4}
ALL_TASKS = [getattr(pytest.mark, f"phase3_task{n}") for n in ANCHORS]


def every_task(test):
    for mark in ALL_TASKS:
        test = mark(test)
    return test


def resolve(module, dotted: str):
    obj = module
    for part in dotted.split("."):
        obj = inspect.getattr_static(obj, part) if inspect.isclass(obj) else getattr(obj, part)
    return obj.fget if isinstance(obj, property) else obj


def per_exercise():
    return [pytest.param(name, task, marks=getattr(pytest.mark, f"phase3_task{task}"), id=name)
            for name, task in EXERCISES.items()]


def _slug(heading: str) -> str:
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@every_task
def test_same_public_names():
    assert starter.__all__ == reference.__all__
    assert set(TASK_OF) == set(starter.__all__)
    for name in starter.__all__:
        assert hasattr(starter, name) and hasattr(reference, name), name


@pytest.mark.parametrize("name", [pytest.param(n, marks=getattr(pytest.mark, f"phase3_task{t}"), id=n)
                                  for n, t in TASK_OF.items()])
def test_same_signatures_and_contracts(name):
    ours, theirs = getattr(starter, name), getattr(reference, name)
    if inspect.isclass(ours) and issubclass(ours, BaseException):
        assert ours.__mro__[1:][0].__name__ == theirs.__mro__[1:][0].__name__, name
        assert inspect.getdoc(ours) == inspect.getdoc(theirs), name
        return
    if inspect.isfunction(ours) or inspect.isclass(ours):
        assert inspect.signature(ours) == inspect.signature(theirs), name
        assert inspect.getdoc(ours) == inspect.getdoc(theirs), f"{name}: the docstring contracts differ"
    else:
        assert ours == theirs, name
    if inspect.isclass(ours):
        methods = [m for m, v in vars(theirs).items() if callable(v) or isinstance(v, property)]
        for m in methods:
            a, b = resolve(starter, f"{name}.{m}"), resolve(reference, f"{name}.{m}")
            if inspect.isfunction(a):
                assert inspect.signature(a) == inspect.signature(b), f"{name}.{m}"
                assert inspect.getdoc(a) == inspect.getdoc(b), f"{name}.{m}: the docstring contracts differ"


@every_task
def test_helpers_are_identical():
    for cls, methods in HELPER_METHODS.items():
        for m in methods:
            a, b = resolve(starter, f"{cls}.{m}"), resolve(reference, f"{cls}.{m}")
            assert inspect.getsource(a) == inspect.getsource(b), f"{cls}.{m}"
    for name in HELPER_OBJECTS:
        assert inspect.getsource(getattr(st_batcher, name)) == inspect.getsource(getattr(ref_batcher, name)), name


@every_task
def test_types_module_is_identical():
    ours = (ROOT / "starter" / "types.py").read_text()
    theirs = (ROOT / "reference" / "types.py").read_text()
    assert theirs == REFERENCE_HEADER + "\n" + ours


def _call_stub(name: str):
    """Call the starter's exercise ``name`` with harmless arguments."""
    shape = (4,)
    config = starter.BatcherConfig()
    if name == "check_request":
        return starter.check_request(torch.zeros(4), input_shape=shape, dtype=torch.float32)
    if name.startswith("DynamicBatcher."):
        b = starter.DynamicBatcher(lambda x: x, config, input_shape=shape)
        method = name.split(".")[1]
        args = {"submit": (torch.zeros(4),), "_run_batch": ([],)}.get(method, ())
        return getattr(b, method)(*args)
    if name == "ModelPool.__init__":
        return starter.ModelPool([starter.ModelSpec("m", lambda x: x, shape)], config)
    if name.startswith("ModelPool."):
        pool = object.__new__(starter.ModelPool)
        method = name.split(".")[1]
        args = {"submit": ("m", torch.zeros(4))}.get(method, ())
        return getattr(pool, method)(*args)
    if name == "run_closed_loop":
        return starter.run_closed_loop(lambda x: None, lambda i: i, concurrency=1, requests=1)
    return starter.run_poisson(lambda x: None, lambda i: i, rate_per_s=1.0, duration_s=1.0)


@pytest.mark.parametrize("name, task", per_exercise())
def test_every_stub_raises_with_its_task_and_anchor(name, task):
    with pytest.raises(NotImplementedError) as info:
        _call_stub(name)
    assert str(info.value) == f"Task 3.{task}: see DYNAMIC_BATCHING_GUIDE.md#{ANCHORS[task]}"


@pytest.mark.parametrize("name, task", per_exercise())
def test_every_exercise_docstring_is_a_contract(name, task):
    fn = resolve(starter, name)
    doc = inspect.getdoc(fn)
    params = [p for p in inspect.signature(fn).parameters if p != "self"]
    parts = ["Tolerance the grader applies", f"DYNAMIC_BATCHING_GUIDE.md#{ANCHORS[task]}"] + (["Args:"] if params else [])
    for part in parts:
        assert part in doc, f"{name}: docstring lacks {part!r}"
    assert "Returns:" in doc or "Effects:" in doc, f"{name}: docstring says neither what it returns nor does"


@every_task
def test_every_anchor_in_the_code_is_a_guide_heading():
    heads = {_slug(line.lstrip("#")) for line in GUIDE.read_text().splitlines() if line.startswith("#")}
    used = set()
    for path in sorted((ROOT / "starter").glob("*.py")) + sorted((ROOT / "reference").glob("*.py")):
        used |= set(re.findall(r"DYNAMIC_BATCHING_GUIDE\.md#([\w-]+)", path.read_text()))
    assert used == set(ANCHORS.values())
    assert used <= heads, f"missing headings: {sorted(used - heads)}"


@every_task
def test_guide_has_the_seven_sections_in_order():
    sections = [line[3:].strip() for line in GUIDE.read_text().splitlines() if line.startswith("## ")]
    assert sections == ["What", "Why", "How", "Key concepts", "Common pitfalls", "Testing strategy",
                        "Performance expectations"]


@every_task
def test_every_starter_exercise_has_a_task_banner():
    for task in ANCHORS:
        banners = [p for p in (ROOT / "starter").glob("*.py") if f"# ## Task 3.{task}" in p.read_text()]
        assert len(banners) == 1, f"Task 3.{task}: banners in {banners}"


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
