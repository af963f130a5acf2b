"""Every part has its folders, its guide with the seven sections, a heading per task, a criterion per task,
and unit tests per task; every criterion is named by its guide."""
from __future__ import annotations

import re

import pytest

from graders.course import REPO_ROOT, slug
from graders.outcomes import load_outcomes
from graders.starters import to_solution

from .cases import PARTS, has_reference, part_cases, task_cases

SECTIONS = ["What", "Why", "How", "Key concepts", "Common pitfalls", "Testing strategy", "Performance expectations"]


def _headings(path) -> set[str]:
    return {slug(line.lstrip("#")) for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("#")}


@pytest.mark.parametrize("part", part_cases())
def test_part_has_its_folders(part):
    folder = REPO_ROOT / part.folder
    assert (folder / "__init__.py").is_file(), f"{part.folder}/__init__.py"
    assert (folder / "starter" / "__init__.py").is_file(), f"{part.folder}/starter/__init__.py"
    assert (REPO_ROOT / part.guide).is_file(), part.guide
    assert (REPO_ROOT / part.grader_dir / "__init__.py").is_file(), part.grader_dir
    if part.notebook:
        assert (REPO_ROOT / part.notebook).is_file(), part.notebook
    if not part.planned:
        assert (REPO_ROOT / part.tests_dir / "__init__.py").is_file(), part.tests_dir
    assert part.name in load_outcomes(part.phase).parts, f"EXPECTED_OUTCOMES.md has no block for part {part.key}"


@pytest.mark.parametrize("part", part_cases())
def test_guide_has_the_seven_sections_in_order(part):
    text = (REPO_ROOT / part.guide).read_text(encoding="utf-8")
    assert [m.group(1).strip() for m in re.finditer(r"^## (.+)$", text, re.M)] == SECTIONS


@pytest.mark.parametrize("task", task_cases())
def test_task_has_its_heading_criteria_and_tests(task):
    assert task.anchor in _headings(REPO_ROOT / task.guide), f"{task.guide} lacks '### {task.heading}'"
    assert load_outcomes(task.phase).select(task=task.number), f"Task {task.label} has no criterion"
    part = next(p for p in PARTS if task in p.tasks)
    tests = "".join(f.read_text(encoding="utf-8") for f in (REPO_ROOT / part.tests_dir).glob("test_*.py"))
    assert task.marker in tests, f"no test in {part.tests_dir} carries the marker {task.marker}"


@pytest.mark.parametrize("part", part_cases())
def test_every_criterion_is_named_in_its_guide(part):
    text = (REPO_ROOT / part.guide).read_text(encoding="utf-8")
    for c in load_outcomes(part.phase).select(part=part.name):
        assert c.id in text, f"{c.id} is graded but {part.guide} never names it"


@pytest.mark.parametrize("part", part_cases())
def test_every_guide_link_in_the_code_is_a_heading(part):
    """Stubs, docstrings and hints point at ``GUIDE.md#anchor``: each anchor must exist."""
    guide = part.guide.rsplit("/", 1)[-1]
    heads = _headings(REPO_ROOT / part.guide)
    sides = ["starter", "reference"] if has_reference(part) else ["starter"]
    for side in sides:
        for path in sorted((REPO_ROOT / part.folder / side).glob("*.py")):
            for anchor in re.findall(re.escape(guide) + r"#([\w-]+)", path.read_text(encoding="utf-8")):
                assert anchor in heads, f"{path.relative_to(REPO_ROOT)} links {guide}#{anchor}, not a heading"


@pytest.mark.parametrize("part", part_cases())
def test_modules_stay_small(part):
    """What a learner reads (the starter) and what the solution holds stay under 400 lines a file; a
    reference file is longer by its prompts, which are the starter's text."""
    for path in sorted((REPO_ROOT / part.folder).rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if "reference" in path.relative_to(REPO_ROOT / part.folder).parts:
            text = to_solution(text, str(path))
        assert len(text.splitlines()) < 400, path
