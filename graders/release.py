"""Write the learner copy of the course: everything except the reference solutions.

What is left out (:func:`excluded`, :func:`instructor_only`):

* every part's ``reference/`` folder (from ``graders/course.toml``);
* the instructor-only tests: ``tests/graders/`` as a whole (the grading framework's own tests grade
  broken, dishonest and *working* submissions, the gradebook and the release itself), and any other
  test file that embeds an exercise's implementation (:func:`embedded_exercises`: a function named
  like an exercise of the manifest, a method inside its class, with a body of 3 statements or more,
  in the code or in a string literal that parses as Python). The unit tests of each part
  (``tests/phase1/``, ...) stay: they call the learner's code, they hold none;
* anything git ignores (virtual environments, caches, grades, trained models).

After copying, :func:`check_release` proves that no reference code came along: no excluded path, no
file carrying the reference banner or a solution marker, no file outside ``starter/`` (a test, a
grader) that embeds an exercise's implementation, and no function anywhere in the copy (tests and
code inside string literals included) whose body is the body of a reference solution (the starter's
own helpers, written in full, excepted). A copy that fails the check is deleted and the release
fails, naming ``file:function``.
"""
from __future__ import annotations

import ast
import fnmatch
import shutil
import subprocess
import textwrap
from pathlib import Path

from .course import REPO_ROOT, phases
from .starters import BANNER as REFERENCE_BANNER
from .starters import MarkerError, marker_lines, to_solution

__all__ = ["excluded", "INSTRUCTOR_ONLY", "REFERENCE_BANNER", "instructor_only", "embedded_exercises",
           "release_files", "write_release", "check_release"]

#: Test folders that never reach the learner copy (see the module docstring for why).
INSTRUCTOR_ONLY = ("tests/graders/*",)
#: A function body with fewer statements (docstring aside) is trivial: stubs, one-line helpers.
MIN_STATEMENTS = 3


def excluded() -> tuple[str, ...]:
    """Glob patterns (repo-relative) of what never reaches the learner copy: each part's reference/."""
    declared = tuple(f"{p.folder}/reference/*" for ph in phases() for p in ph.parts)
    # fnmatch's * spans "/": any reference/ under a phase folder
    return (*declared, "phase*/reference/*", *INSTRUCTOR_ONLY)


def _exercise_names() -> set[tuple[str | None, str]]:
    """Every exercise of the manifest as (class or None, function): ``("DynamicBatcher", "submit")``."""
    names = set()
    for ph in phases():
        for t in ph.tasks:
            for ex in t.exercises:
                cls, _, fn = ex.rpartition(".")
                names.add((cls or None, fn))
    return names


def _trees(text: str, *, strings: bool) -> list[ast.Module]:
    """The module's tree, and with ``strings`` the tree of each string literal that parses as code."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return []
    trees = [tree]
    if strings:
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and "\n" in node.value:
                try:
                    trees.append(ast.parse(textwrap.dedent(node.value)))
                except (SyntaxError, ValueError):
                    continue
    return trees


def _body(node: ast.FunctionDef | ast.AsyncFunctionDef) -> list[ast.stmt]:
    """A function's statements without its docstring."""
    body = list(node.body)
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
        body = body[1:]
    return body


def _functions(tree: ast.AST, cls: str | None = None):
    """(enclosing class or None, function node) for every function in ``tree``."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield cls, node
            yield from _functions(node, None)
        elif isinstance(node, ast.ClassDef):
            yield from _functions(node, node.name)
        else:
            yield from _functions(node, cls)


def embedded_exercises(path: Path) -> list[str]:
    """The exercises whose implementation a (test) file embeds: ``["summarize_latencies", ...]``.

    An exercise is embedded when a function of its name (a method inside a class of its class's name)
    has a body of :data:`MIN_STATEMENTS` or more, in the file's code or in a string literal of it.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    wanted = _exercise_names()
    found = []
    for tree in _trees(text, strings=True):
        for cls, fn in _functions(tree):
            if (cls, fn.name) in wanted and len(_body(fn)) >= MIN_STATEMENTS:
                name = f"{cls}.{fn.name}" if cls else fn.name
                if name not in found:
                    found.append(name)
    return found


def instructor_only(rel: str | Path, root: Path = REPO_ROOT) -> bool:
    """True for a test file that stays out of the learner copy (``tests/graders/``, embedded solutions)."""
    s = Path(rel).as_posix()
    if not s.startswith("tests/"):
        return False
    if any(fnmatch.fnmatch(s, pat) for pat in INSTRUCTOR_ONLY):
        return True
    return s.endswith(".py") and bool(embedded_exercises(root / s))


def release_files(root: Path = REPO_ROOT) -> list[Path]:
    """Paths (relative to ``root``) that belong in the learner copy."""
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                             cwd=root, capture_output=True, check=True).stdout.decode()
        paths = [Path(p) for p in out.split("\0") if p]
    except (OSError, subprocess.CalledProcessError):
        skip = {".git", ".venv", "__pycache__", "grades", "cache", ".pytest_cache", ".benchmarks"}
        paths = [p.relative_to(root) for p in root.rglob("*")
                 if p.is_file() and not skip & set(p.relative_to(root).parts)]
    keep = []
    for p in paths:
        s = p.as_posix()
        if any(fnmatch.fnmatch(s, pat) for pat in excluded()) or instructor_only(s, root):
            continue
        if (root / p).is_file():
            keep.append(p)
    return sorted(keep)


def write_release(dest: Path, root: Path = REPO_ROOT) -> list[Path]:
    """Copy the learner copy into ``dest`` (which must not exist or be empty); return the files."""
    dest = Path(dest).resolve()
    if dest.exists() and any(dest.iterdir()):
        raise FileExistsError(f"{dest} is not empty; choose a new folder for the release")
    if dest.is_relative_to(root.resolve()):
        raise ValueError(f"{dest} is inside the course repo; write the release elsewhere")
    files = release_files(root)
    for rel in files:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, target)
    problems = check_release(dest, root)
    if problems:
        shutil.rmtree(dest, ignore_errors=True)  # never leave a leaking copy behind to be published
        raise RuntimeError(f"the release would leak reference code (nothing was written to {dest}):\n  "
                           + "\n  ".join(problems))
    return files


def _function_bodies(path: Path, *, solution: bool = False, strings: bool = False) -> list[tuple[str, str]]:
    """(name, normalised body) of every non-trivial function in a module (ast.dump, docstring removed, names kept).

    ``solution=True`` reads a reference file as its solution view (prompts and markers removed);
    ``strings=True`` also reads the code inside its string literals (a solution embedded in a test).
    """
    try:
        text = path.read_text(encoding="utf-8")
        text = to_solution(text, str(path)) if solution else text
    except (UnicodeDecodeError, MarkerError):
        return []
    bodies = []
    for tree in _trees(text, strings=strings):
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                body = _body(node)
                if len(body) >= MIN_STATEMENTS:  # trivial bodies are shared by design (helpers written in full)
                    bodies.append((node.name, ast.dump(ast.Module(body=body, type_ignores=[]))))
    return bodies


def check_release(dest: Path, root: Path = REPO_ROOT) -> list[str]:
    """Everything in ``dest`` that looks like reference code; empty when the release is clean."""
    problems = []
    ref_bodies: dict[str, str] = {}
    shared: set[str] = set()
    parts = [p for ph in phases() for p in ph.parts]
    for part in parts:
        for ref in (root / part.folder / "reference").rglob("*.py"):
            ref_bodies.update({b: f"{ref.relative_to(root)}:{n}"
                               for n, b in _function_bodies(ref, solution=True)})
        # Helpers written out in full exist in both starter and reference by design.
        for st in (root / part.folder / "starter").rglob("*.py"):
            shared.update(b for _, b in _function_bodies(st))
    for p in sorted(dest.rglob("*")):
        if not p.is_file():
            continue
        rel = p.relative_to(dest).as_posix()
        if any(fnmatch.fnmatch(rel, pat) for pat in excluded()):
            problems.append(f"{rel}: excluded path present")
            continue
        if p.suffix in (".py", ".ipynb"):
            text = p.read_text(encoding="utf-8", errors="replace")
            if p.suffix == ".py" and text.lstrip().startswith(REFERENCE_BANNER):
                problems.append(f"{rel}: carries the reference banner")
            # graders/starters.py shows the markers in its docstring: it documents them, it holds no solution.
            if rel != "graders/starters.py" and (lines := marker_lines(text)):
                problems.append(f"{rel}:{lines[0]}: carries a solution marker (a reference block survived)")
        if p.suffix == ".py" and "/starter/" not in f"/{rel}":  # a starter holds the exercises' stubs
            problems += [f"{rel}:{name} embeds the implementation of an exercise"
                         + (" (an instructor-only test)" if rel.startswith("tests/") else "")
                         for name in embedded_exercises(p)]
        if p.suffix == ".py":
            # A copied reference file still holds its prompts: read it as its solution view too.
            bodies = [*_function_bodies(p, strings=True), *_function_bodies(p, solution=True)]
            for name, body in dict.fromkeys(bodies):
                if body in ref_bodies and body not in shared:
                    problems.append(f"{rel}:{name} has the body of {ref_bodies[body]}")
    return problems
