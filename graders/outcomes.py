"""Thresholds as data: parse the machine-readable block of a phase's EXPECTED_OUTCOMES.md.

Each phase's ``EXPECTED_OUTCOMES.md`` holds one or more fenced ``toml`` blocks whose first line is
``# inference-lab thresholds v1``. They are the single source of truth for every criterion:
what it measures, its points, its time limit, its hint, and its pass / full-marks thresholds per
hardware profile. The human-readable table in the same file is checked against the block by
:func:`check_table_agreement` (and by ``tests/graders/test_outcomes.py``).

Block layout::

    [criteria."p1.formats_agree"]
    title = "Every format gives the same output"
    task = 1                     # the guide's Task 1.N
    guide = "phase1_basics/IMPLEMENTATION_GUIDE.md#task-11-load-a-model-in-any-format"
    metric = "max |output - eager|"
    unit = ""                    # "", "x", "%", "ms", "bytes", "samples/s"
    better = "lower"             # "higher" | "lower"
    points = 15
    hint = "..."
    gpu = false                  # true: needs an NVIDIA GPU, skipped with that reason elsewhere
    required = true              # false: graded and reported, never decides the exit code
    time_limit_s = 120
    memory_limit_mb = 8192
    [criteria."p1.formats_agree".profiles]
    cpu = { pass = 1e-4, full = 1e-5 }

A profile missing from ``profiles`` falls back along :data:`graders.profiles.FALLBACK`
(``cpu-vnni`` -> ``cpu``); a criterion with no threshold for the active profile is skipped with
that reason.
"""
from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "BLOCK_TAG", "Thresholds", "CriterionSpec", "PhaseOutcomes", "OutcomesError",
    "PHASE_DIRS", "outcomes_path", "load_outcomes", "parse_outcomes", "check_table_agreement",
]

BLOCK_TAG = "# inference-lab thresholds v1"
REPO_ROOT = Path(__file__).resolve().parents[1]

#: Phase number -> the phase's folder at the top of the repo.
PHASE_DIRS = {
    1: "phase1_basics",
    2: "phase2_optimization",
    3: "phase3_advanced",
    4: "phase4_production",
}

_UNITS = ("", "x", "%", "ms", "bytes", "samples/s", "pt", "dB")
_FENCE = re.compile(r"^```toml[^\n]*\n(.*?)^```", re.S | re.M)


class OutcomesError(ValueError):
    """The EXPECTED_OUTCOMES.md block is missing or malformed (the grader cannot run: exit 2)."""


@dataclass(frozen=True)
class Thresholds:
    """Pass and full-marks thresholds for one profile, in the criterion's unit."""

    pass_: float
    full: float


@dataclass(frozen=True)
class CriterionSpec:
    """One criterion as declared in EXPECTED_OUTCOMES.md."""

    id: str
    phase: int
    title: str
    task: int
    guide: str
    metric: str
    unit: str
    better: str
    points: float
    hint: str
    profiles: dict[str, Thresholds]
    gpu: bool = False
    required: bool = True
    time_limit_s: float = 120.0
    memory_limit_mb: int = 8192

    def thresholds_for(self, profile: str) -> Thresholds | None:
        """The thresholds for ``profile``, following the fallback chain; None if there are none."""
        from graders.profiles import fallback_chain

        for p in fallback_chain(profile):
            if p in self.profiles:
                return self.profiles[p]
        return None


@dataclass
class PhaseOutcomes:
    phase: int
    path: Path
    criteria: dict[str, CriterionSpec] = field(default_factory=dict)

    def for_task(self, task: int | None) -> list[CriterionSpec]:
        return [c for c in self.criteria.values() if task is None or c.task == task]


def outcomes_path(phase: int, root: Path = REPO_ROOT) -> Path:
    if phase not in PHASE_DIRS:
        raise OutcomesError(f"unknown phase {phase}; phases are {sorted(PHASE_DIRS)}")
    return root / PHASE_DIRS[phase] / "EXPECTED_OUTCOMES.md"


def load_outcomes(phase: int, root: Path = REPO_ROOT) -> PhaseOutcomes:
    """Parse the thresholds of ``phase`` from the grader's own copy of the repo."""
    path = outcomes_path(phase, root)
    if not path.is_file():
        raise OutcomesError(f"{path} not found: phase {phase} has no graded outcomes in this copy")
    return parse_outcomes(path.read_text(encoding="utf-8"), phase=phase, path=path)


def parse_outcomes(text: str, *, phase: int, path: Path = Path("EXPECTED_OUTCOMES.md")) -> PhaseOutcomes:
    blocks = [b for b in _FENCE.findall(text) if b.lstrip().startswith(BLOCK_TAG)]
    if not blocks:
        raise OutcomesError(f"{path}: no ```toml block starting with {BLOCK_TAG!r}")
    out = PhaseOutcomes(phase=phase, path=path)
    for block in blocks:
        try:
            data = tomllib.loads(block)
        except tomllib.TOMLDecodeError as e:
            raise OutcomesError(f"{path}: thresholds block is not valid TOML: {e}") from e
        if data.get("phase", phase) != phase:
            raise OutcomesError(f"{path}: block says phase {data.get('phase')}, expected {phase}")
        for cid, raw in data.get("criteria", {}).items():
            if cid in out.criteria:
                raise OutcomesError(f"{path}: criterion {cid} declared twice")
            out.criteria[cid] = _criterion(cid, raw, phase, path)
    if not out.criteria:
        raise OutcomesError(f"{path}: the thresholds block declares no criteria")
    return out


def _criterion(cid: str, raw: dict, phase: int, path: Path) -> CriterionSpec:
    where = f"{path}: criterion {cid}"
    if not cid.startswith(f"p{phase}."):
        raise OutcomesError(f"{where}: ids of phase {phase} start with 'p{phase}.'")
    for key in ("title", "task", "guide", "metric", "unit", "better", "points", "hint", "profiles"):
        if key not in raw:
            raise OutcomesError(f"{where}: missing key {key!r}")
    if raw["better"] not in ("higher", "lower"):
        raise OutcomesError(f"{where}: better must be 'higher' or 'lower', not {raw['better']!r}")
    if raw["unit"] not in _UNITS:
        raise OutcomesError(f"{where}: unit {raw['unit']!r} not one of {_UNITS}")
    profiles: dict[str, Thresholds] = {}
    for prof, t in raw["profiles"].items():
        try:
            th = Thresholds(pass_=float(t["pass"]), full=float(t["full"]))
        except (KeyError, TypeError, ValueError) as e:
            raise OutcomesError(f"{where}: profile {prof} needs numeric 'pass' and 'full' ({e})") from e
        worse = th.full < th.pass_ if raw["better"] == "higher" else th.full > th.pass_
        if worse or not all(math.isfinite(v) for v in (th.pass_, th.full)):
            raise OutcomesError(f"{where}: profile {prof}: full marks ({th.full}) must be at least "
                                f"as good as pass ({th.pass_}) for better={raw['better']}")
        profiles[prof] = th
    return CriterionSpec(
        id=cid, phase=phase, title=raw["title"], task=int(raw["task"]), guide=raw["guide"],
        metric=raw["metric"], unit=raw["unit"], better=raw["better"], points=float(raw["points"]),
        hint=raw["hint"].strip(), profiles=profiles, gpu=bool(raw.get("gpu", False)),
        required=bool(raw.get("required", True)),
        time_limit_s=float(raw.get("time_limit_s", 120)),
        memory_limit_mb=int(raw.get("memory_limit_mb", 8192)),
    )


# ## The human table must agree with the block ----------------------------------------------

_NUM = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def _table_number(cell: str) -> float | None:
    m = _NUM.search(cell.replace(",", ""))
    return float(m.group(0)) if m else None


def check_table_agreement(path: Path, phase: int) -> list[str]:
    """Compare the markdown table(s) of EXPECTED_OUTCOMES.md with its thresholds block.

    The table has the columns ``| id | criterion | task | profile | pass | full marks | points |``
    (extra columns are allowed after those); one row per (criterion, profile). Returns a list of
    disagreements, empty when the two agree exactly.
    """
    text = path.read_text(encoding="utf-8")
    spec = parse_outcomes(text, phase=phase, path=path)
    rows: dict[tuple[str, str], list[str]] = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 7 and cells[0].strip("`") in spec.criteria:
            rows[(cells[0].strip("`"), cells[3])] = cells
    problems = []
    for cid, c in spec.criteria.items():
        for prof, th in c.profiles.items():
            cells = rows.pop((cid, prof), None)
            if cells is None:
                problems.append(f"{cid} / {prof}: in the block, missing from the table")
                continue
            for name, got, want in (("pass", _table_number(cells[4]), th.pass_),
                                    ("full marks", _table_number(cells[5]), th.full),
                                    ("points", _table_number(cells[6]), c.points)):
                if got is None or not math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-15):
                    problems.append(f"{cid} / {prof}: table {name} {cells[4 if name == 'pass' else 5 if name == 'full marks' else 6]!r} != block {want}")
            if str(c.task) != cells[2].split(".")[-1]:
                problems.append(f"{cid} / {prof}: table task {cells[2]!r} != block task {c.task}")
    for cid, prof in rows:
        problems.append(f"{cid} / {prof}: in the table, missing from the block")
    return problems
