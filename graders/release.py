"""Write the learner copy of the course: everything except the reference solutions.

What is left out (:func:`excluded`): every part's ``reference/`` folder (from ``graders/course.toml``)
and anything git ignores (virtual environments, caches, grades, trained models).

After copying, :func:`check_release` proves that no reference code came along: no excluded path, no
file carrying the reference banner or a solution marker, and no function anywhere in the copy whose
body is the body of a reference solution (the starter's own helpers, written in full, excepted).
"""
from __future__ import annotations

import ast
import fnmatch
import shutil
import subprocess
from pathlib import Path

from .course import REPO_ROOT, phases
from .starters import BANNER as REFERENCE_BANNER
from .starters import MarkerError, marker_lines, to_solution

__all__ = ["excluded", "REFERENCE_BANNER", "release_files", "write_release", "check_release"]


def excluded() -> tuple[str, ...]:
    """Glob patterns (repo-relative) of what never reaches the learner copy: each part's reference/."""
    declared = tuple(f"{p.folder}/reference/*" for ph in phases() for p in ph.parts)
    return (*declared, "phase*/reference/*")   # fnmatch's * spans "/": any reference/ under a phase folder


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
        if any(fnmatch.fnmatch(s, pat) for pat in excluded()):
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
        raise RuntimeError("the release would leak reference code:\n  " + "\n  ".join(problems))
    return files


def _function_bodies(path: Path, *, solution: bool = False) -> dict[str, str]:
    """Normalised bodies (ast.dump, docstring removed) of the functions in a module, by name.

    ``solution=True`` reads a reference file as its solution view (prompts and markers removed).
    """
    try:
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(to_solution(text, str(path)) if solution else text)
    except (SyntaxError, UnicodeDecodeError, MarkerError):
        return {}
    bodies = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            body = list(node.body)
            if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
                body = body[1:]
            if len(body) >= 3:  # trivial bodies are shared by design (helpers written in full)
                bodies[node.name] = ast.dump(ast.Module(body=body, type_ignores=[]))
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
                               for n, b in _function_bodies(ref, solution=True).items()})
        # Helpers written out in full exist in both starter and reference by design.
        for st in (root / part.folder / "starter").rglob("*.py"):
            shared.update(_function_bodies(st).values())
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
        if p.suffix == ".py":
            # A copied reference file still holds its prompts: read it as its solution view too.
            bodies = {**_function_bodies(p), **_function_bodies(p, solution=True)}
            for name, body in bodies.items():
                if body in ref_bodies and body not in shared:
                    problems.append(f"{rel}:{name} has the body of {ref_bodies[body]}")
    return problems
