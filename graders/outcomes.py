"""Thresholds as data: parse the machine-readable blocks of a phase's EXPECTED_OUTCOMES.md.

Each phase's ``EXPECTED_OUTCOMES.md`` holds one fenced ``toml`` block per part whose first line is
``# inference-lab thresholds v1``. They are the single source of truth for every criterion: what it
measures, its points, its limits, its hint, and its pass / full-marks thresholds per hardware profile.
The human table beside each block is generated from it (:func:`render_table`, ``make outcomes``) and a
test proves it current; nobody edits it by hand.

Block layout::

    # inference-lab thresholds v1
    phase = 2
    part = "quantization"        # omitted in a phase that has a single part
    [defaults]                   # optional, once per phase: what a criterion gets when it says nothing
    time_limit_s = 120
    memory_limit_mb = 8192

    [criteria."p2.quantization.sqnr"]
    title = "INT8 round trip keeps the signal"
    task = 1                     # Task 2.1; its guide link comes from graders/course.toml
    metric = "SQNR of quantize/dequantize"
    unit = "dB"                  # one of UNITS
    better = "higher"            # "higher" | "lower"
    points = 10
    hint = "..."                 # shown with a fail when the criterion diagnosed nothing more specific
    to_full = "..."              # optional: what usually closes the gap from a pass to full marks
    gpu = false                  # true: needs an NVIDIA GPU, skipped with that reason elsewhere
    required = true              # false: graded and reported, never decides the exit code
    time_limit_s = 120           # overrides [defaults]
    [criteria."p2.quantization.sqnr".profiles]
    cpu = { pass = 30, full = 35 }

Ids start with the part's prefix (``p2.quantization.``; ``p1.`` in a single-part phase) and the task
must belong to that part. A profile missing from ``profiles`` falls back along
:data:`graders.profiles.FALLBACK` (``cpu-vnni`` -> ``cpu``); a criterion with no threshold for the
active profile is skipped with that reason.
"""
from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .course import REPO_ROOT, CourseError, Part, phase as course_phase

__all__ = [
    "BLOCK_TAG", "UNITS", "DEFAULTS", "Thresholds", "CriterionSpec", "PhaseOutcomes", "OutcomesError",
    "REPO_ROOT", "outcomes_path", "load_outcomes", "parse_outcomes", "render_table", "render_outcomes",
    "stale_outcomes", "write_outcomes",
]

BLOCK_TAG = "# inference-lab thresholds v1"
UNITS = ("", "x", "%", "ms", "bytes", "samples/s", "pt", "dB", "MiB/min", "MiB")
#: What a criterion gets when neither it nor the phase's ``[defaults]`` says otherwise.
DEFAULTS = {"time_limit_s": 120.0, "memory_limit_mb": 8192}

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
    """One criterion as declared in EXPECTED_OUTCOMES.md (``guide`` is derived from the course manifest)."""

    id: str
    phase: int
    part: str | None
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
    to_full: str = ""  # what usually closes the gap between a pass and full marks (shown with a partial pass)
    time_limit_s: float = DEFAULTS["time_limit_s"]
    memory_limit_mb: int = DEFAULTS["memory_limit_mb"]

    def thresholds_for(self, profile: str) -> Thresholds | None:
        """The thresholds for ``profile``, following the fallback chain; None if there are none."""
        from .profiles import fallback_chain

        for p in fallback_chain(profile):
            if p in self.profiles:
                return self.profiles[p]
        return None


@dataclass
class PhaseOutcomes:
    phase: int
    path: Path
    criteria: dict[str, CriterionSpec] = field(default_factory=dict)
    parts: list[str | None] = field(default_factory=list)   # the parts that have a block, in file order

    def select(self, *, part: str | None = None, task: int | None = None) -> list[CriterionSpec]:
        """The criteria of one part and/or one task (None: every one)."""
        return [c for c in self.criteria.values()
                if (part is None or c.part == part) and (task is None or c.task == task)]

    def for_task(self, task: int | None) -> list[CriterionSpec]:
        return self.select(task=task)


def outcomes_path(phase: int, root: Path = REPO_ROOT) -> Path:
    try:
        folder = course_phase(phase).folder
    except CourseError as e:
        raise OutcomesError(str(e)) from e
    return root / folder / "EXPECTED_OUTCOMES.md"


def load_outcomes(phase: int, root: Path = REPO_ROOT) -> PhaseOutcomes:
    """Parse the thresholds of ``phase`` from the grader's own copy of the repo."""
    path = outcomes_path(phase, root)
    if not path.is_file():
        raise OutcomesError(f"{path} not found: phase {phase} has no graded outcomes in this copy")
    return parse_outcomes(path.read_text(encoding="utf-8"), phase=phase, path=path)


def _blocks(text: str) -> list[str]:
    return [b for b in _FENCE.findall(text) if b.lstrip().startswith(BLOCK_TAG)]


def parse_outcomes(text: str, *, phase: int, path: Path = Path("EXPECTED_OUTCOMES.md")) -> PhaseOutcomes:
    """Every criterion of the phase's blocks; raises OutcomesError naming the file and criterion."""
    blocks = _blocks(text)
    if not blocks:
        raise OutcomesError(f"{path}: no ```toml block starting with {BLOCK_TAG!r}")
    try:
        ph = course_phase(phase)
    except CourseError as e:
        raise OutcomesError(f"{path}: {e}") from e
    out = PhaseOutcomes(phase=phase, path=path)
    defaults = dict(DEFAULTS)
    seen_defaults = False
    for block in blocks:
        try:
            data = tomllib.loads(block)
        except tomllib.TOMLDecodeError as e:
            raise OutcomesError(f"{path}: thresholds block is not valid TOML: {e}") from e
        if data.get("phase", phase) != phase:
            raise OutcomesError(f"{path}: block says phase {data.get('phase')}, expected {phase}")
        try:
            part = ph.part(data.get("part"))
        except CourseError as e:
            raise OutcomesError(f"{path}: {e}") from e
        if part.name in out.parts:
            raise OutcomesError(f"{path}: two blocks for part {part.key}")
        out.parts.append(part.name)
        if "defaults" in data:
            if seen_defaults:
                raise OutcomesError(f"{path}: [defaults] is declared once per phase, in its first block")
            unknown = set(data["defaults"]) - set(DEFAULTS)
            if unknown:
                raise OutcomesError(f"{path}: [defaults] knows only {sorted(DEFAULTS)}, not {sorted(unknown)}")
            defaults.update(data["defaults"])
            seen_defaults = True
        for cid, raw in data.get("criteria", {}).items():
            if cid in out.criteria:
                raise OutcomesError(f"{path}: criterion {cid} declared twice")
            out.criteria[cid] = _criterion(cid, raw, part, defaults, path)
    return out


_KEYS = ("title", "task", "metric", "unit", "better", "points", "hint", "profiles")
_OPTIONAL = ("gpu", "required", "to_full", "time_limit_s", "memory_limit_mb")


def _criterion(cid: str, raw: dict, part: Part, defaults: dict, path: Path) -> CriterionSpec:
    where = f"{path}: criterion {cid}"
    if not cid.startswith(part.id_prefix) or cid.count(".") != part.id_prefix.count("."):
        raise OutcomesError(f"{where}: ids of part {part.key} look like '{part.id_prefix}<name>'")
    for key in _KEYS:
        if key not in raw:
            raise OutcomesError(f"{where}: missing key {key!r}")
    unknown = set(raw) - set(_KEYS) - set(_OPTIONAL)
    if unknown:
        raise OutcomesError(f"{where}: unknown keys {sorted(unknown)} (the guide link comes from the task)")
    if raw["better"] not in ("higher", "lower"):
        raise OutcomesError(f"{where}: better must be 'higher' or 'lower', not {raw['better']!r}")
    if raw["unit"] not in UNITS:
        raise OutcomesError(f"{where}: unit {raw['unit']!r} not one of {UNITS}")
    try:
        task = part.task(int(raw["task"]))
    except CourseError as e:
        raise OutcomesError(f"{where}: {e}") from e
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
        id=cid, phase=part.phase, part=part.name, title=raw["title"], task=task.number, guide=task.link,
        metric=raw["metric"], unit=raw["unit"], better=raw["better"], points=float(raw["points"]),
        hint=raw["hint"].strip(), profiles=profiles, gpu=bool(raw.get("gpu", False)),
        required=bool(raw.get("required", True)), to_full=str(raw.get("to_full", "")).strip(),
        time_limit_s=float(raw.get("time_limit_s", defaults["time_limit_s"])),
        memory_limit_mb=int(raw.get("memory_limit_mb", defaults["memory_limit_mb"])),
    )


# ## The human table, generated from the block -----------------------------------------------------

def _begin(part: str | None) -> str:
    return f"<!-- BEGIN thresholds table{' ' + part if part else ''}: generated by `make outcomes` from the block below -->"


_END = "<!-- END thresholds table -->"


def _num(v: float, unit: str) -> str:
    text = re.sub(r"e([-+])0*(\d)", lambda m: f"e{m.group(1).lstrip('+')}{m.group(2)}",
                  f"{v:.0e}" if v and abs(v) < 1e-3 else f"{v:g}")
    return f"{text}{unit}" if unit in ("x", "%") else f"{text} {unit}".rstrip()


def render_table(outcomes: PhaseOutcomes, part: str | None) -> str:
    """The markdown table of one part's criteria: one row per (criterion, profile)."""
    if not outcomes.select(part=part):
        return "_No graded criteria yet: this part is planned._"
    rows = ["| id | criterion | measured | task | profile | pass | full marks | points |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for c in outcomes.select(part=part):
        sign = "≥" if c.better == "higher" else "≤"
        notes = [n for n, on in (("GPU", c.gpu), ("not required", not c.required)) if on]
        title = c.title + (f" ({', '.join(notes)})" if notes else "")
        metric = c.metric.replace("|", "\\|")
        for prof, th in c.profiles.items():
            rows.append(f"| `{c.id}` | {title} | {metric} | {c.phase}.{c.task} | {prof} | "
                        f"{sign} {_num(th.pass_, c.unit)} | {sign} {_num(th.full, c.unit)} | {c.points:g} |")
    return "\n".join(rows)


def render_outcomes(text: str, *, phase: int, path: Path = Path("EXPECTED_OUTCOMES.md")) -> str:
    """``text`` with every generated table replaced by what its part's block says now.

    Each part's table sits between ``<!-- BEGIN thresholds table [part]: ... -->`` and
    ``<!-- END thresholds table -->``; a block whose part has no such pair is an error.
    """
    outcomes = parse_outcomes(text, phase=phase, path=path)
    for part in outcomes.parts:
        begin = _begin(part)
        start = text.find(begin)
        end = text.find(_END, start)
        if start < 0 or end < 0:
            raise OutcomesError(f"{path}: no generated table for part {part or phase}: add the lines\n"
                                f"{begin}\n{_END}\nwhere the table belongs")
        text = text[:start] + begin + "\n" + render_table(outcomes, part) + "\n" + text[end:]
    return text


def _outcome_files(root: Path = REPO_ROOT) -> list[tuple[int, Path]]:
    from .course import phases

    return [(ph.number, p) for ph in phases() if (p := root / ph.folder / "EXPECTED_OUTCOMES.md").is_file()]


def _generated(root: Path) -> list[tuple[Path, str, str]]:
    """(file, its text, what it should be) for every file holding a generated table: each phase's
    EXPECTED_OUTCOMES.md (from its blocks) and the README (its phase table, from the manifest)."""
    from .course import render_readme

    out = [(p, t := p.read_text(encoding="utf-8"), render_outcomes(t, phase=n, path=p))
           for n, p in _outcome_files(root)]
    readme = root / "README.md"
    if readme.is_file():
        text = readme.read_text(encoding="utf-8")
        try:
            out.append((readme, text, render_readme(text)))
        except CourseError as e:
            raise OutcomesError(str(e)) from e
    return out


def stale_outcomes(root: Path = REPO_ROOT) -> list[str]:
    """The files whose generated tables are not what their sources generate (``make outcomes`` fixes them)."""
    return [f"{p.relative_to(root)}: a generated table is out of date (make outcomes)"
            for p, text, want in _generated(root) if text != want]


def write_outcomes(root: Path = REPO_ROOT) -> list[Path]:
    """Regenerate every generated table; returns the files that changed."""
    changed = []
    for p, text, want in _generated(root):
        if want != text:
            p.write_text(want, encoding="utf-8")
            changed.append(p)
    return changed
