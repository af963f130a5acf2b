"""The README's commands are real: every ``make X`` is a Makefile target, every ``-m marker`` is
registered, every repo path it names exists, and the set-up commands do what it says they do.

Also the packaging metadata that ``make setup`` relies on (an SPDX ``license``, so ``pip install -e .``
prints no setuptools licence deprecation warning)."""
from __future__ import annotations

import fnmatch
import re
import tomllib

import pytest

from graders.course import REPO_ROOT, phase
from graders.release import excluded

README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
MAKEFILE = (REPO_ROOT / "Makefile").read_text(encoding="utf-8")


def _code(text: str) -> list[str]:
    """Every backtick span and every line of a fenced code block in a markdown text."""
    blocks = re.findall(r"^```[^\n]*\n(.*?)^```", text, flags=re.S | re.M)
    lines = [line for b in blocks for line in b.splitlines()]
    prose = re.sub(r"^```[^\n]*\n.*?^```", "", text, flags=re.S | re.M)
    return lines + re.findall(r"`([^`\n]+)`", prose)


def _help_lines() -> list[str]:
    """The ``## learner: make X | what`` lines that ``make help`` prints."""
    return re.findall(r"^## (?:learner|instructor): (.*?) \| ", MAKEFILE, flags=re.M)


def _targets() -> dict[str, str]:
    """Makefile target -> its prerequisites."""
    return {m[0]: m[1] for m in re.findall(r"^([A-Za-z][\w-]*)\s*:(?!=)([^\n]*)", MAKEFILE, flags=re.M)}


def _make_commands(snippets: list[str]) -> set[str]:
    return {t for s in snippets for t in re.findall(r"(?:^|[\s(/])make ([a-z][\w-]*)", s)}


def test_every_make_command_in_the_readme_and_help_is_a_target():
    commands = _make_commands(_code(README)) | _make_commands(_help_lines())
    assert {"setup", "grade", "test", "test-task", "help"} <= commands  # the learner's path is documented
    assert sorted(commands - set(_targets())) == []


def test_every_marker_the_readme_names_is_registered(pytestconfig):
    registered = {line.split(":")[0].strip() for line in pytestconfig.getini("markers")}
    named = set()
    for s in [*_code(README), *_help_lines(), README]:
        for expr in re.findall(r"-m (\"[^\"]+\"|'[^']+'|\S+)", s):
            named |= set(re.findall(r"[A-Za-z_]\w*", expr.strip("`'\""))) - {"and", "or", "not"}
    assert "phase1_task2" in named
    assert sorted(named - registered) == []


def test_every_repo_path_the_readme_names_exists():
    """Paths of two components or more in backticks or code blocks (``plots/``, ``starter/`` are relative to
    a report or a part; templates like ``<part>`` and generated folders aside); a path the
    release leaves out (``reference/``, ``tests/graders/``) may be missing in the learner copy."""
    generated = ("grades/", "gradebook/", "dist/", ".venv", "~")
    paths = {tok.rstrip(".,;:)") for s in _code(README) for tok in s.split()}
    paths = {p for p in paths if re.fullmatch(r"[\w.-]+(/[\w.-]+)+/?", p) and not p.startswith(generated)}
    assert {"phase1_basics/starter/", "tests/phase1", "graders/course.toml"} <= paths
    missing = [p for p in sorted(paths) if not (REPO_ROOT / p).exists()
               and not any(fnmatch.fnmatch(p.rstrip("/") + "/x", pat) for pat in excluded())]
    assert missing == []


def test_the_readme_task_commands_agree_with_the_manifest():
    """``make test-task PHASE=1 TASK=2`` is ``.venv/bin/pytest -m phase1_task2 tests/phase1``, as the README says."""
    pairs = re.findall(r"\.venv/bin/pytest -m (phase(\d+)_task(\d+)) (tests/\S+)", README)
    assert pairs, "the README shows the pytest command behind make test-task"
    for marker, ph, task, folder in pairs:
        assert folder.rstrip(")`") == phase(int(ph)).part_of_task(int(task)).tests_dir, marker
    assert "phase$(PHASE)_task$(TASK)" in MAKEFILE and "part_of_task($(TASK)).tests_dir" in MAKEFILE


def test_set_up_commands_do_what_the_readme_says():
    """``make setup`` only installs; the two first commands of the quick start (one grading, one testing)
    set up .venv first; bare ``pytest`` is flagged as the wrong way."""
    targets = _targets()
    assert targets["setup"].split() == ["$(STAMP)"]
    quick_start = re.search(r"## Quick start.*?```bash\n(.*?)```", README, flags=re.S).group(1)
    first = [line.split()[1] for line in quick_start.splitlines() if line.startswith("make ")]
    assert first == ["grade", "test"]
    assert all("$(STAMP)" in targets[t].split() for t in first)
    assert "make setup" in README and "No module named torch" in README


@pytest.mark.parametrize("key", ["license", "build-system"])
def test_pyproject_license_is_an_spdx_expression(key):
    """PEP 639: ``license = "MIT"`` (a string) needs setuptools >= 77; a ``{text = ...}`` table is deprecated."""
    data = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    if key == "license":
        assert isinstance(data["project"]["license"], str)
        assert "License ::" not in " ".join(data["project"].get("classifiers", []))  # superseded by the expression
    else:
        req = next(r for r in data["build-system"]["requires"] if r.startswith("setuptools"))
        minimum = re.search(r">=\s*(\d+)", req)
        assert minimum and int(minimum.group(1)) >= 77, req
