"""What is derived is generated and current: every starter/ from its reference/, every thresholds table
from its block, the README's phase table from the manifest."""
from __future__ import annotations

import pytest

from graders.course import REPO_ROOT
from graders.outcomes import stale_outcomes
from graders.starters import BANNER, marker_lines, stale_starters

from .cases import has_reference, part_cases

pytestmark = pytest.mark.skipif(not any(has_reference(p.values[0]) for p in part_cases()),
                                reason="no reference solution in this copy (learner release)")


def test_every_starter_is_what_its_reference_generates():
    assert stale_starters() == []


def test_every_table_is_what_its_block_generates():
    assert stale_outcomes() == []


@pytest.mark.parametrize("part", part_cases())
def test_reference_files_carry_the_banner_and_starters_no_marker(part):
    if not has_reference(part):
        pytest.skip("no reference solution in this copy")
    for path in sorted((REPO_ROOT / part.folder / "reference").rglob("*.py")):
        assert path.read_text(encoding="utf-8").startswith(BANNER), f"{path} lacks the banner {BANNER!r}"
    for path in sorted((REPO_ROOT / part.folder / "starter").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        assert BANNER not in text and not marker_lines(text), path
