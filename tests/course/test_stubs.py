"""Every exercise stub raises ``NotImplementedError("Task N.M: see GUIDE.md#anchor")`` and documents its
contract; starter and reference expose the same public API with the same signatures and docstrings."""
from __future__ import annotations

import ast
import inspect
import textwrap

import pytest

from .cases import exercise_cases, has_reference, impl_module, part_cases, resolve


def _message(task) -> str:
    return f"Task {task.label}: see {task.guide.rsplit('/', 1)[-1]}#{task.anchor}"


def _part(task):
    from graders.course import phase

    return phase(task.phase).part(task.part)


@pytest.mark.parametrize("task, name", exercise_cases())
def test_every_stub_raises_with_its_task_and_anchor(task, name):
    """The stub's last statement raises the task's NotImplementedError, and nothing returns before it."""
    fn = resolve(impl_module(_part(task), "starter"), name)
    tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    body = tree.body[0].body
    last = body[-1]
    want = _message(task)
    assert (isinstance(last, ast.Raise) and isinstance(last.exc, ast.Call)
            and getattr(last.exc.func, "id", None) == "NotImplementedError"
            and [getattr(a, "value", None) for a in last.exc.args] == [want]), \
        f"{name}: the stub must end with raise NotImplementedError({want!r})"
    assert not any(isinstance(n, ast.Return) for stmt in body for n in ast.walk(stmt)), \
        f"{name}: the stub returns before it raises"


@pytest.mark.parametrize("task, name", exercise_cases())
def test_every_exercise_docstring_is_a_contract(task, name):
    fn = resolve(impl_module(_part(task), "starter"), name)
    doc = inspect.getdoc(fn) or ""
    assert doc, f"{name} has no docstring"
    params = [p for p in inspect.signature(fn).parameters if p not in ("self", "cls")]
    if params and "Args:" not in doc and "Parameters" not in doc:
        pytest.fail(f"{name}: its docstring names no Args: ({params})")


def _public(module):
    return {name: getattr(module, name) for name in module.__all__}


@pytest.mark.parametrize("part", part_cases())
def test_starter_and_reference_have_the_same_api(part):
    if not has_reference(part):
        pytest.skip("no reference solution in this copy (learner release)")
    starter, reference = impl_module(part, "starter"), impl_module(part, "reference")
    assert starter.__all__ == reference.__all__
    assert len(set(starter.__all__)) == len(starter.__all__), "a name is listed twice in __all__"
    exercises = {e.split(".")[0] for t in part.tasks for e in t.exercises}
    assert exercises <= set(starter.__all__), f"exercises missing from __all__: {exercises - set(starter.__all__)}"
    for name, ours in _public(starter).items():
        theirs = getattr(reference, name)
        if ours is theirs:
            continue                    # shared by both sides (types.py, helpers of the part package)
        if inspect.isfunction(ours) or inspect.isclass(ours):
            assert inspect.signature(ours) == inspect.signature(theirs), name
            assert inspect.getdoc(ours) == inspect.getdoc(theirs), f"{name}: the docstring contracts differ"
        if inspect.isclass(ours):
            for attr, value in vars(theirs).items():
                if inspect.isfunction(value):
                    a, b = resolve(starter, f"{name}.{attr}"), resolve(reference, f"{name}.{attr}")
                    assert inspect.signature(a) == inspect.signature(b), f"{name}.{attr}"
                    assert inspect.getdoc(a) == inspect.getdoc(b), f"{name}.{attr}: the docstring contracts differ"
