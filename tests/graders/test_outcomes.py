"""Thresholds live in one place, and the human table agrees with it."""
from __future__ import annotations

from pathlib import Path

import pytest

from graders.outcomes import (PHASE_DIRS, REPO_ROOT, OutcomesError, check_table_agreement, load_outcomes,
                              parse_outcomes)
from graders.profiles import fallback_chain

PHASES = [p for p, d in PHASE_DIRS.items() if (REPO_ROOT / d / "EXPECTED_OUTCOMES.md").exists()]


@pytest.mark.parametrize("phase", PHASES)
def test_table_agrees_with_block(phase):
    path = REPO_ROOT / PHASE_DIRS[phase] / "EXPECTED_OUTCOMES.md"
    assert check_table_agreement(path, phase) == []


@pytest.mark.parametrize("phase", PHASES)
def test_every_criterion_is_graded_by_a_test(phase):
    ids = set(load_outcomes(phase).criteria)
    tests = "\n".join(p.read_text() for p in (REPO_ROOT / "graders" / f"phase{phase}").glob("test_*.py"))
    missing = [c for c in ids if f'@criterion("{c}")' not in tests]
    assert missing == []


@pytest.mark.parametrize("phase", PHASES)
def test_guides_named_by_criteria_exist(phase):
    for c in load_outcomes(phase).criteria.values():
        path, _, anchor = c.guide.partition("#")
        text = (REPO_ROOT / path).read_text(encoding="utf-8")
        heads = {_anchor(line) for line in text.splitlines() if line.startswith("#")}
        assert anchor in heads, f"{c.id}: {c.guide} has no such heading"


def _anchor(heading: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens."""
    text = heading.lstrip("#").strip().lower()
    return "".join(ch for ch in text if ch.isalnum() or ch in " -_").replace(" ", "-")


BLOCK = '''
```toml
# inference-lab thresholds v1
phase = 1
[criteria."p1.x"]
title = "X"
task = 1
guide = "g.md#x"
metric = "m"
unit = "x"
better = "higher"
points = 10
hint = "h"
[criteria."p1.x".profiles]
cpu = { pass = 2.0, full = 3.0 }
```
'''
TABLE = "| id | criterion | task | profile | pass | full marks | points |\n|-|-|-|-|-|-|-|\n"


def test_parse_and_profile_fallback():
    spec = parse_outcomes(BLOCK, phase=1).criteria["p1.x"]
    assert spec.thresholds_for("cpu").pass_ == 2.0
    assert spec.thresholds_for("cpu-vnni").full == 3.0  # falls back to cpu
    assert fallback_chain("cpu-vnni") == ["cpu-vnni", "cpu"]


@pytest.mark.parametrize("broken, why", [
    ("", "no ```toml block"),
    (BLOCK.replace('better = "higher"', 'better = "up"'), "better must be"),
    (BLOCK.replace("full = 3.0", "full = 1.0"), "full marks"),
    (BLOCK.replace('unit = "x"', 'unit = "furlongs"'), "unit"),
    (BLOCK.replace('hint = "h"\n', ""), "missing key 'hint'"),
    (BLOCK.replace("points = 10", "points = "), "not valid TOML"),
    (BLOCK.replace('"p1.x"', '"p2.x"'), "start with 'p1.'"),
])
def test_malformed_blocks_are_refused(broken, why):
    with pytest.raises(OutcomesError, match=why):
        parse_outcomes(broken, phase=1)


def test_table_disagreement_is_reported(tmp_path: Path):
    p = tmp_path / "EXPECTED_OUTCOMES.md"
    p.write_text(TABLE + "| `p1.x` | X | 1.1 | cpu | ≥ 2.0x | ≥ 3.0x | 10 |\n" + BLOCK)
    assert check_table_agreement(p, 1) == []
    p.write_text(TABLE + "| `p1.x` | X | 1.1 | cpu | ≥ 2.5x | ≥ 3.0x | 10 |\n" + BLOCK)
    assert any("pass" in m for m in check_table_agreement(p, 1))
    p.write_text(TABLE + BLOCK)
    assert any("missing from the table" in m for m in check_table_agreement(p, 1))
