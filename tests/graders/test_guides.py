"""Every guide has the brief's seven sections, and every criterion is named by the guide it points at."""
from __future__ import annotations

import re

import pytest

from graders.outcomes import PHASE_DIRS, REPO_ROOT, load_outcomes

SECTIONS = ["What", "Why", "How", "Key concepts", "Common pitfalls", "Testing strategy", "Performance expectations"]
GUIDES = sorted(p for d in PHASE_DIRS.values() for p in (REPO_ROOT / d).glob("*GUIDE.md"))
PHASES = [n for n, d in PHASE_DIRS.items() if (REPO_ROOT / d / "EXPECTED_OUTCOMES.md").exists()]


@pytest.mark.parametrize("guide", GUIDES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_guide_has_the_seven_sections_in_order(guide):
    heads = [m.group(1).strip() for m in re.finditer(r"^## (.+)$", guide.read_text(encoding="utf-8"), re.M)]
    assert heads == SECTIONS


@pytest.mark.parametrize("phase", PHASES)
def test_each_criterion_is_named_in_its_guide(phase):
    for c in load_outcomes(phase).criteria.values():
        text = (REPO_ROOT / c.guide.partition("#")[0]).read_text(encoding="utf-8")
        assert c.id in text, f"{c.id} is graded but {c.guide} never names it"
