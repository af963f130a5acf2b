"""The guide and the stubs tell the learner the same contract, as far as text and syntax can show it.

A learner may implement from the guide alone, so what the guide shows of a stub must be callable as
shown, and what the reference does must be written in the docstring the learner reads:

* every call or signature a guide shows of a public name of its part (``measure_latency(fn, warmup=5)``
  in backticks or in a code block) uses only keyword names the real signature has, passes no more
  positional arguments than it takes, and a signature display (``f(fn, *, warmup=10)``) lists real
  parameters, in their order, of their kind, with their defaults;
* every public function of a stub module, every public method of its classes and every exercise has
  a docstring;
* every function whose reference raises an exception (a ``raise`` in its body, or in a private helper
  of the same module it calls) names that exception in a ``Raises:`` section of its docstring (for a
  constructor or a dunder method, of its class's docstring);
* the README's exit codes are the ones the grader and ``make grade`` return.

Pure text and AST: nothing is run; the file takes a few seconds, most of it importing the stubs.
"""
from __future__ import annotations

import ast
import inspect
import re
import textwrap
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable

import pytest

from graders.course import REPO_ROOT, Part

from .cases import PARTS, has_reference, impl_module, part_cases

WITH_CODE = [p for p in PARTS if not p.planned]
#: Exceptions that mean "not written yet" or "override me", not a contract.
NOT_A_CONTRACT = {"NotImplementedError"}


# ## What a part exposes ------------------------------------------------------------------------

@dataclass(frozen=True)
class Callee:
    """One public callable of a part: what the guide may call it as, and its real signature."""

    label: str
    fn: Callable[..., Any]
    drop_first: bool          # a method: ``self`` (or a classmethod's ``cls``) is not the caller's to pass


def _own_methods(cls: type) -> dict[str, Any]:
    out = {}
    for klass in cls.__mro__:
        if klass.__module__.split(".")[0] in ("builtins", "torch", "onnxruntime", "typing", "abc"):
            continue
        for name, value in vars(klass).items():
            value = getattr(value, "__func__", value)
            if inspect.isfunction(value) and name not in out:
                out[name] = value
    return out


@lru_cache(maxsize=None)
def _callees(part: Part) -> tuple[dict[str, list[Callee]], dict[str, list[Callee]]]:
    """(by bare name, by ``Class.method``): functions, classes (their constructor) and methods."""
    module = impl_module(part, "starter")
    bare: dict[str, list[Callee]] = {}
    dotted: dict[str, list[Callee]] = {}
    exercise_methods = {e.split(".")[1] for t in part.tasks for e in t.exercises if "." in e}
    for name in module.__all__:
        obj = getattr(module, name)
        if inspect.isfunction(obj):
            bare.setdefault(name, []).append(Callee(name, obj, False))
        elif inspect.isclass(obj):
            bare.setdefault(name, []).append(Callee(name, obj, False))
            for meth, fn in _own_methods(obj).items():
                if meth.startswith("__") and meth != "__init__":
                    continue
                static = inspect.getattr_static(obj, meth, None)
                callee = Callee(f"{name}.{meth}", fn, not isinstance(static, staticmethod))
                dotted.setdefault(f"{name}.{meth}", []).append(callee)
                if meth in exercise_methods:
                    bare.setdefault(meth, []).append(callee)
    return bare, dotted


# ## What a guide shows -------------------------------------------------------------------------

_FENCE = re.compile(r"^[ \t]*```[^\n]*\n(.*?)^[ \t]*```", re.S | re.M)     # fences may sit in a list item
_INLINE = re.compile(r"`([^`]+)`")            # may wrap onto the next line, as markdown allows
_CALL_START = re.compile(r"(?<![\w.])((?:[A-Za-z_]\w*\.)*[A-Za-z_]\w*)\(")


def _snippets(text: str) -> list[tuple[int, str]]:
    """(line number, code) for every fenced block and every inline code span outside them."""
    out = []
    for m in _FENCE.finditer(text):
        out.append((text.count("\n", 0, m.start()) + 2, textwrap.dedent(m.group(1))))
    blanked = _FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    for m in _INLINE.finditer(blanked):
        if "\n\n" in m.group(1):
            continue                                # an unpaired backtick, not a code span
        out.append((blanked.count("\n", 0, m.start()) + 1, m.group(1)))
    return sorted(out)


def _calls(code: str) -> list[tuple[str, str, int]]:
    """(callee as written, the text of the whole call, line offset) for each ``name(...)`` in ``code``."""
    out = []
    for m in _CALL_START.finditer(code):
        depth, i = 0, m.end() - 1
        while i < len(code):
            depth += {"(": 1, ")": -1}.get(code[i], 0)
            if depth == 0:
                break
            i += 1
        if depth == 0:
            out.append((m.group(1), code[m.start(1):i + 1], code.count("\n", 0, m.start())))
    return out


def _targets(part: Part, written: str) -> list[Callee]:
    bare, dotted = _callees(part)
    parts = written.split(".")
    if len(parts) == 1:
        return bare.get(written, [])
    if ".".join(parts[-2:]) in dotted:              # Class.method, or module.Class.method
        return dotted[".".join(parts[-2:])]
    if parts[-1] in bare and parts[-2] in _module_names(part):      # starter.measure_latency(...)
        return bare[parts[-1]]
    owner = parts[-2]
    if owner[:1].islower() and parts[-1] in bare and any("." in c.label for c in bare[parts[-1]]):
        return [c for c in bare[parts[-1]] if "." in c.label]        # batcher.submit(x): an exercise method
    return []


@lru_cache(maxsize=None)
def _module_names(part: Part) -> frozenset[str]:
    folder = REPO_ROOT / part.folder / "starter"
    return frozenset({"starter"} | {p.stem for p in folder.glob("*.py")})


def _params(callee: Callee) -> list[inspect.Parameter] | None:
    try:
        params = list(inspect.signature(callee.fn).parameters.values())
    except (TypeError, ValueError):
        return None                                 # an exception class, a builtin: no signature to read
    if callee.drop_first and params and params[0].name in ("self", "cls"):
        params = params[1:]
    return params


def _literal(node: ast.AST | None) -> Any:
    try:
        return ast.literal_eval(node) if node is not None else inspect.Parameter.empty
    except ValueError:
        return ...                                  # not a literal: nothing to compare


def _check_call(call: ast.Call, params: list[inspect.Parameter]) -> str | None:
    kinds = {p.name: p.kind for p in params}
    var_kw = any(p.kind is p.VAR_KEYWORD for p in params)
    var_pos = any(p.kind is p.VAR_POSITIONAL for p in params)
    for kw in call.keywords:
        if kw.arg is None:
            continue                                # **kwargs spread: nothing to check
        if kw.arg not in kinds and not var_kw:
            return f"keyword {kw.arg}= is not a parameter"
        if kinds.get(kw.arg) is inspect.Parameter.POSITIONAL_ONLY:
            return f"{kw.arg} is positional-only"
    if any(isinstance(a, ast.Starred) for a in call.args):
        return None
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if not var_pos and len(call.args) > len(positional):
        return (f"{len(call.args)} positional arguments, but only {len(positional)} can be passed by "
                f"position ({[p.name for p in positional]}; the rest are keyword-only)")
    return None


def _check_signature(fn: ast.FunctionDef, params: list[inspect.Parameter]) -> str | None:
    real = {p.name: (i, p) for i, p in enumerate(params)}
    a = fn.args
    shown = ([(x, inspect.Parameter.POSITIONAL_OR_KEYWORD) for x in a.posonlyargs + a.args]
             + [(x, inspect.Parameter.KEYWORD_ONLY) for x in a.kwonlyargs])
    defaults = dict(zip([x.arg for x in a.posonlyargs + a.args][::-1], a.defaults[::-1]))
    defaults.update({x.arg: d for x, d in zip(a.kwonlyargs, a.kw_defaults) if d is not None})
    last = -1
    for arg, kind in shown:
        if arg.arg not in real:
            return f"parameter {arg.arg!r} is not in the real signature"
        index, p = real[arg.arg]
        if index < last:
            return f"parameter {arg.arg!r} is shown out of order"
        last = index
        if (kind is inspect.Parameter.KEYWORD_ONLY) != (p.kind is p.KEYWORD_ONLY):
            return f"parameter {arg.arg!r} is {'' if p.kind is p.KEYWORD_ONLY else 'not '}keyword-only"
        want = _literal(defaults.get(arg.arg))
        if want is not ... and want is not inspect.Parameter.empty and want != p.default:
            return f"default {arg.arg}={want!r}, the stub's is {p.default!r}"
    return None


_KEYWORD = re.compile(r"(?<![\w=!<>])([A-Za-z_]\w*)\s*=(?!=)")


def _problem(text: str, params: list[inspect.Parameter]) -> str | None:
    """Why ``text`` (``name(...)``) disagrees with ``params``, or None."""
    try:
        node = ast.parse(text, mode="eval").body
    except SyntaxError:
        node = None
    if isinstance(node, ast.Call):
        return _check_call(node, params)
    head = text[text.index("(") :]
    try:
        fn = ast.parse(f"def _{head}: pass").body[0]
    except SyntaxError:
        fn = None
    if isinstance(fn, ast.FunctionDef):
        return _check_signature(fn, params)
    # Neither a call nor a signature (``check_request(x, input_shape=, dtype=)``): the keyword names.
    names = {p.name for p in params}
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    inner = head[1:-1]
    depth, top = 0, []
    for ch in inner:                                # keywords at the top level of the call only
        depth += {"(": 1, "[": 1, "{": 1, ")": -1, "]": -1, "}": -1}.get(ch, 0)
        top.append(ch if depth == 0 else " ")
    bad = [k for k in _KEYWORD.findall("".join(top)) if k not in names]
    return f"keyword {bad[0]}= is not a parameter" if bad else None


def guide_disagreements(part: Part, text: str) -> list[str]:
    """Every call or signature of ``text`` (a guide) that the stubs of ``part`` would not accept."""
    problems = []
    for line, code in _snippets(text):
        for written, call, offset in _calls(code):
            targets = _targets(part, written)
            if not targets:
                continue
            found = [_problem(call, params) for params in map(_params, targets) if params is not None]
            if found and all(found):
                problems.append(f"{part.guide}:{line + offset}: `{call}`: {targets[0].label}: {found[0]}")
    return problems


@pytest.mark.parametrize("part", part_cases(WITH_CODE))
def test_what_the_guide_calls_matches_the_stub_signatures(part):
    text = (REPO_ROOT / part.guide).read_text(encoding="utf-8")
    problems = guide_disagreements(part, text)
    assert not problems, "the guide shows calls the stubs would refuse:\n" + "\n".join(problems)


def test_the_guide_check_catches_a_seeded_disagreement():
    """The checker itself: a wrong keyword, too many positionals, a wrong default, all caught."""
    part = next(p for p in WITH_CODE if p.phase == 1)
    seeded = ("Call `measure_latency(fn, warmup=5, iterations=100)` (fine), then\n"
              "`measure_latency(fn, warmups=5)`, `measure_latency(fn, 5, 100)` and\n"
              "```python\nstats = summarize_latencies(samples_ms, ddof=0)\n```\n"
              "**`measure_latency(fn, *, warmup=7, iterations=100, sync=None)`**\n")
    found = guide_disagreements(part, seeded)
    assert len(found) == 4, found
    joined = "\n".join(found)
    assert all(what in joined for what in ("warmups=", "3 positional", "ddof=", "warmup=7")), joined


# ## Docstrings: present, and naming what the reference raises ---------------------------------

def _public_functions(part: Part) -> list[tuple[str, Any]]:
    """(dotted name, function) of everything public the starter defines, and every exercise."""
    module = impl_module(part, "starter")
    prefix = part.impl_module("starter")
    out: dict[str, Any] = {}
    for name in module.__all__:
        obj = getattr(module, name)
        if not getattr(obj, "__module__", "").startswith(prefix):
            continue                                # shared types and helpers, not a stub module's
        if inspect.isfunction(obj):
            out[name] = obj
        elif inspect.isclass(obj):
            out[name] = obj
            for meth, value in vars(obj).items():
                value = getattr(value, "__func__", value)
                if inspect.isfunction(value) and (not meth.startswith("_") or meth in ("__init__", "__call__")):
                    out[f"{name}.{meth}"] = value
    for task in part.tasks:
        for name in task.exercises:
            obj: Any = module
            for piece in name.split("."):
                obj = inspect.getattr_static(obj, piece) if inspect.isclass(obj) else getattr(obj, piece)
            out[name] = getattr(obj, "__func__", obj)
    return sorted(out.items())


@pytest.mark.parametrize("part", part_cases(WITH_CODE))
def test_every_public_function_of_a_stub_module_has_a_docstring(part):
    missing = []
    for name, obj in _public_functions(part):
        if name.endswith((".__init__", ".__call__")):
            owner = getattr(impl_module(part, "starter"), name.split(".")[0])
            if inspect.getdoc(obj) or inspect.getdoc(owner):
                continue
        elif (obj.__doc__ or "").strip():
            continue
        missing.append(name)
    assert not missing, f"no docstring: {missing}"


@lru_cache(maxsize=None)
def _module_defs(path: str) -> tuple[dict[str, ast.AST], dict[str, dict[str, ast.AST]]]:
    """Top-level functions and each class's methods of one reference file, by name."""
    tree = ast.parse(open(path, encoding="utf-8").read())
    funcs = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    classes = {n.name: {m.name: m for m in n.body if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef))}
               for n in tree.body if isinstance(n, ast.ClassDef)}
    return funcs, classes


def _exception_name(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


#: A handler of one of these catches whatever its ``try`` body raises.
_CATCH_ALL = {None, "Exception", "BaseException"}


def raised(node: ast.AST, funcs: dict[str, ast.AST], methods: dict[str, ast.AST],
           seen: set[str] | None = None) -> set[str]:
    """Exception names that can leave a function: its own ``raise`` statements (nested functions
    included) and those of the private helpers of its module (``_helper(...)``, ``self._helper(...)``)
    it calls, less what a surrounding ``try`` catches by name (or as ``Exception``)."""
    seen = set() if seen is None else seen

    def visit(n: ast.AST) -> set[str]:
        if isinstance(n, ast.Try):
            caught = set()
            for h in n.handlers:
                types = h.type.elts if isinstance(h.type, ast.Tuple) else [h.type]
                caught |= {_exception_name(t) if t is not None else None for t in types}
            inner = set().union(*(visit(s) for s in n.body))
            inner = set() if caught & _CATCH_ALL else inner - caught
            rest = [*n.orelse, *n.finalbody, *(s for h in n.handlers for s in h.body)]
            return inner | set().union(*(visit(s) for s in rest))
        here: set[str] = set()
        if isinstance(n, ast.Raise) and n.exc is not None:
            name = _exception_name(n.exc)
            if name and name[:1].isupper():
                here.add(name)
        elif isinstance(n, ast.Call):
            f, helper = n.func, None
            if isinstance(f, ast.Name) and f.id.startswith("_") and f.id in funcs:
                helper = f.id, funcs[f.id]
            elif (isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id == "self"
                  and f.attr.startswith("_") and not f.attr.startswith("__") and f.attr in methods):
                helper = "self." + f.attr, methods[f.attr]
            if helper and helper[0] not in seen:
                seen.add(helper[0])
                here |= raised(helper[1], funcs, methods, seen)
        return here.union(*(visit(c) for c in ast.iter_child_nodes(n)))

    return visit(node) - NOT_A_CONTRACT


def raises_section(doc: str) -> str:
    """The text of a docstring's ``Raises:`` section ("" if it has none)."""
    lines = doc.splitlines()
    for i, line in enumerate(lines):
        if line.strip() == "Raises:":
            indent = len(line) - len(line.lstrip())
            body = []
            for nxt in lines[i + 1:]:
                if nxt.strip() and len(nxt) - len(nxt.lstrip()) <= indent:
                    break
                body.append(nxt)
            return "\n".join(body)
    return ""


def undocumented_raises(doc: str, names: set[str]) -> set[str]:
    section = raises_section(doc)
    return {n for n in names if not re.search(rf"\b{re.escape(n)}\b", section)}


def _reference_node(part: Part, dotted: str):
    ref = impl_module(part, "reference")
    owner_name = dotted.split(".")[0]
    owner = getattr(ref, owner_name)
    path = inspect.getsourcefile(owner)
    funcs, classes = _module_defs(path)
    if "." in dotted:
        cls, meth = dotted.split(".", 1)
        methods = classes.get(cls, {})
        return methods.get(meth), funcs, methods
    return funcs.get(dotted), funcs, {}


@pytest.mark.parametrize("part", part_cases(WITH_CODE))
def test_every_exception_the_reference_raises_is_documented(part):
    if not has_reference(part):
        pytest.skip("no reference solution in this copy (learner release)")
    starter = impl_module(part, "starter")
    problems = []
    for name, fn in _public_functions(part):
        if inspect.isclass(fn):
            continue
        node, funcs, methods = _reference_node(part, name)
        if node is None:
            continue                                # inherited, or defined elsewhere
        names = raised(node, funcs, methods)
        if not names:
            continue
        docs = [inspect.getdoc(fn) or ""]
        if name.endswith((".__init__", ".__call__")):      # a constructor's contract may sit on its class
            docs.append(inspect.getdoc(getattr(starter, name.split(".")[0])) or "")
        missing = set.intersection(*(undocumented_raises(d, names) for d in docs))
        if missing:
            problems.append(f"{name} raises {sorted(missing)} but its docstring's Raises: section does not say so")
    assert not problems, "\n".join(problems)


def test_the_raises_check_catches_a_seeded_omission():
    """The checker itself: a helper's raise counts, a caught one and NotImplementedError do not."""
    source = textwrap.dedent('''
        def _check(n):
            if n < 0:
                raise ValueError("negative")

        def f(n, path):
            """Do it.

            Raises:
                FileNotFoundError: no such path.
            """
            if not path:
                raise FileNotFoundError(path)
            try:
                raise KeyError(n)               # caught here: not the caller's concern
            except KeyError:
                pass
            _check(n)
            raise NotImplementedError("Task 9.9")
        ''')
    tree = ast.parse(source)
    funcs = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    names = raised(funcs["f"], funcs, {})
    assert names == {"FileNotFoundError", "ValueError"}
    assert undocumented_raises(ast.get_docstring(funcs["f"]), names) == {"ValueError"}


# ## The README's exit codes: the grader's, and make's --------------------------------------------

def test_the_readme_exit_codes_are_what_the_grader_and_make_return():
    """The README says what ``python -m graders grade`` returns (0 / 1 / 2, as ``GradeRun.exit_code`` and the
    CLI's error path) and that ``make grade`` returns 0 or 2 and prints the grader's code, in the words the
    Makefile's grade recipe prints. (Here rather than in test_readme.py, which has another owner.)"""
    from graders import cli
    from graders.records import GradeRun

    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    makefile = (REPO_ROOT / "Makefile").read_text(encoding="utf-8")
    bullet = re.search(r"^- \*\*Exit code\*\*:(.*?)(?=^\S|^- )", readme, flags=re.S | re.M)
    assert bullet, "the README has an **Exit code** bullet"
    said = " ".join(bullet.group(1).split())
    for claim in ("exits 0 when every required criterion passed", "1 when some failed or stayed inconclusive",
                  "2 when the grader itself could not run", "`make grade` exits 0 or 2"):
        assert claim in said, claim
    printed = re.findall(r'echo "(grader exit code [^"]*)"', makefile)
    assert len(printed) == 2 and "exit 1" in makefile and "exit $$code" in makefile, printed
    assert "`grader exit code 1: a required criterion failed or stayed inconclusive`" in said
    assert printed[0] == "grader exit code 1: a required criterion failed or stayed inconclusive"
    source = inspect.getsource(GradeRun.exit_code.fget)
    assert "return 2" in source and "return 1" in source and "return 0" in source
    assert "return 2" in inspect.getsource(cli.main)


# ## Private state: what the guide names exists, what the given code sets is used ------------------

#: Private attributes kept for a person to inspect, not read by the code (class.attribute -> where it is said).
DIAGNOSTIC = {"DynamicBatcher._worker_error": "_worker_loop's docstring"}


@pytest.mark.parametrize("part", part_cases(WITH_CODE))
def test_every_private_name_the_guide_shows_is_in_the_stubs(part):
    """``self._queue``, ``_next_batch``, ``_resolve``: a private name the guide tells the learner to use is
    defined or set in the starter (or the part's shared modules beside it)."""
    text = (REPO_ROOT / part.guide).read_text(encoding="utf-8")
    names = set(re.findall(r"`(?:self\.)?(_[a-z]\w*)`", text))
    folder = REPO_ROOT / part.folder
    source = "".join(p.read_text(encoding="utf-8") for p in [*(folder / "starter").glob("*.py"), *folder.glob("*.py")])
    missing = sorted(n for n in names if not re.search(rf"\b{re.escape(n)}\b", source))
    assert missing == [], f"{part.guide} names {missing}, which the stubs never define or set"


@pytest.mark.parametrize("part", part_cases(WITH_CODE))
def test_every_private_attribute_the_reference_sets_is_read(part):
    """A flag that only the method setting it reads (``_drain``, once) is state the learner is told to keep
    for nothing: each private ``self._x`` of a reference class is read by a method that does not set it."""
    if not has_reference(part):
        pytest.skip("no reference solution in this copy (learner release)")
    unread = []
    for path in sorted((REPO_ROOT / part.folder / "reference").glob("*.py")):
        for cls in (n for n in ast.parse(path.read_text(encoding="utf-8")).body if isinstance(n, ast.ClassDef)):
            writes: dict[str, set[str]] = {}
            reads: dict[str, set[str]] = {}
            for fn in (m for m in cls.body if isinstance(m, ast.FunctionDef)):
                for n in ast.walk(fn):
                    if (isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "self"
                            and n.attr.startswith("_") and not n.attr.startswith("__")):
                        (writes if isinstance(n.ctx, ast.Store) else reads).setdefault(n.attr, set()).add(fn.name)
            unread += [f"{cls.name}.{a}" for a, where in writes.items()
                       if not reads.get(a, set()) - where and f"{cls.name}.{a}" not in DIAGNOSTIC]
    assert unread == [], f"private attributes no other method reads: {unread}"
