"""Write each part's ``starter/`` from its ``reference/``: every exercise is written once.

The reference file is the source. What the learner writes sits between solution markers, and what the
learner sees instead sits in a prompt block right after it (the convention of Otter-Grader and
nbgrader; the prompt is a string literal, so the reference still imports and runs)::

    def measure_latency(fn, *, iterations: int = 100) -> LatencyStats:
        \"\"\"... the full contract, shared by both sides ...\"\"\"
        # BEGIN SOLUTION
        times = [...]
        return summarize_latencies(times)
        # END SOLUTION
        \"\"\" # BEGIN PROMPT
        # Step 1: ...
        raise NotImplementedError("Task 1.2: see IMPLEMENTATION_GUIDE.md#task-12-latency-measurement")
        \"\"\"  # END PROMPT

The starter keeps everything else byte for byte, drops the solution blocks and the marker lines, and
keeps the prompt's lines as code (``r\"\"\" # BEGIN PROMPT`` opens a raw string, for prompts with
backslashes). A first line ``# REFERENCE SOLUTION ...`` (the banner that marks
a file as hidden) is dropped too. ``'''`` may wrap a prompt that itself holds ``\"\"\"``.

``python -m graders starters`` (``make starters``) writes every part's ``starter/``;
``--check`` writes nothing and lists what regenerating would change (``tests/course`` runs it).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .course import REPO_ROOT, Part, phases

__all__ = ["BANNER", "MARKERS", "MarkerError", "marker_lines", "to_starter", "to_solution", "starter_files", "write_starters",
           "stale_starters"]

BANNER = "# REFERENCE SOLUTION"
_BEGIN_SOLUTION = re.compile(r"^\s*# BEGIN SOLUTION\s*$")
_END_SOLUTION = re.compile(r"^\s*# END SOLUTION\s*$")
_BEGIN_PROMPT = re.compile(r"^\s*r?(\"\"\"|''') # BEGIN PROMPT\s*$")
_END_PROMPT = re.compile(r"^\s*(\"\"\"|''')\s*# END PROMPT\s*$")
#: Text that must never survive into a learner's file.
MARKERS = ("# BEGIN SOLUTION", "# END SOLUTION", "# BEGIN PROMPT", "# END PROMPT")


def marker_lines(text: str) -> list[int]:
    """Line numbers (1-based) of ``text`` that are solution or prompt markers."""
    pats = (_BEGIN_SOLUTION, _END_SOLUTION, _BEGIN_PROMPT, _END_PROMPT)
    return [i for i, line in enumerate(text.splitlines(), start=1) if any(p.match(line) for p in pats)]


class MarkerError(ValueError):
    """A reference file's markers are unbalanced or misplaced (``file:line: what``)."""


@dataclass
class _Split:
    starter: list[str]
    solution: list[str]


def _split(text: str, where: str) -> _Split:
    lines = text.splitlines(keepends=True)
    if lines and lines[0].startswith(BANNER):
        lines = lines[1:]
    starter: list[str] = []
    solution: list[str] = []
    state, opened_at, quote = "code", 0, ""
    for i, line in enumerate(lines, start=1):
        if state == "code":
            if _BEGIN_SOLUTION.match(line):
                state, opened_at = "solution", i
            elif (m := _BEGIN_PROMPT.match(line)):
                state, opened_at, quote = "prompt", i, m.group(1)
            elif _END_SOLUTION.match(line) or _END_PROMPT.match(line):
                raise MarkerError(f"{where}:{i}: an END marker without its BEGIN")
            else:
                starter.append(line)
                solution.append(line)
        elif state == "solution":
            if _END_SOLUTION.match(line):
                state = "code"
            elif any(p.match(line) for p in (_BEGIN_SOLUTION, _BEGIN_PROMPT, _END_PROMPT)):
                raise MarkerError(f"{where}:{i}: a marker inside the solution block opened at line {opened_at}")
            else:
                solution.append(line)
        else:  # prompt
            if (m := _END_PROMPT.match(line)):
                if m.group(1) != quote:
                    raise MarkerError(f"{where}:{i}: the prompt opened at line {opened_at} with {quote} "
                                      f"closes with {m.group(1)}")
                state = "code"
            elif any(p.match(line) for p in (_BEGIN_SOLUTION, _END_SOLUTION, _BEGIN_PROMPT)):
                raise MarkerError(f"{where}:{i}: a marker inside the prompt block opened at line {opened_at}")
            elif quote in line:
                other = "'''" if quote == '"""' else '"""'
                raise MarkerError(f"{where}:{i}: the prompt opened at line {opened_at} contains {quote}; "
                                  f"wrap it in {other} instead")
            else:
                starter.append(line)
    if state != "code":
        raise MarkerError(f"{where}:{opened_at}: the {state} block opened here is never closed")
    return _Split(starter, solution)


def to_starter(text: str, where: str = "<reference>") -> str:
    """The learner's version of a reference file: solutions out, prompts in, banner dropped."""
    return "".join(_split(text, where).starter)


def to_solution(text: str, where: str = "<reference>") -> str:
    """The reference without its prompts or markers: the code a learner must never be given."""
    return "".join(_split(text, where).solution)


def _parts_with_reference(root: Path) -> list[Part]:
    return [p for ph in phases() for p in ph.parts if (root / p.folder / "reference").is_dir()]


def starter_files(part: Part, root: Path = REPO_ROOT) -> dict[Path, str]:
    """``starter/`` path (repo-relative) -> the text generated from the matching reference file."""
    ref_dir = root / part.folder / "reference"
    out = {}
    for ref in sorted(ref_dir.rglob("*.py")):
        rel = ref.relative_to(ref_dir)
        if "__pycache__" in rel.parts:
            continue
        out[Path(part.folder) / "starter" / rel] = to_starter(ref.read_text(encoding="utf-8"),
                                                               where=str(ref.relative_to(root)))
    return out


def stale_starters(root: Path = REPO_ROOT) -> list[str]:
    """What regenerating would change: ``path: reason`` lines, empty when every starter is current."""
    problems = []
    for part in _parts_with_reference(root):
        want = starter_files(part, root)
        have = {p.relative_to(root) for p in (root / part.folder / "starter").rglob("*.py")
                if "__pycache__" not in p.parts}
        for rel, text in want.items():
            f = root / rel
            if not f.is_file():
                problems.append(f"{rel}: missing (make starters writes it)")
            elif f.read_text(encoding="utf-8") != text:
                problems.append(f"{rel}: differs from what its reference generates (edit the reference, "
                                f"then make starters)")
        for rel in sorted(have - set(want)):
            problems.append(f"{rel}: has no reference file to generate it from")
    return problems


def write_starters(root: Path = REPO_ROOT) -> list[Path]:
    """Regenerate every ``starter/`` that has a ``reference/``; returns the files that changed."""
    changed = []
    for part in _parts_with_reference(root):
        want = starter_files(part, root)
        for rel, text in want.items():
            f = root / rel
            if not f.is_file() or f.read_text(encoding="utf-8") != text:
                f.parent.mkdir(parents=True, exist_ok=True)
                f.write_text(text, encoding="utf-8")
                changed.append(rel)
        for f in (root / part.folder / "starter").rglob("*.py"):
            if "__pycache__" not in f.parts and f.relative_to(root) not in want:
                f.unlink()
                changed.append(f.relative_to(root))
    return changed
