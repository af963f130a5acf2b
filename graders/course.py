"""The course manifest: phases, parts and tasks, declared once in ``graders/course.toml``.

Everything that needs to know where a phase lives, which parts it has, what a task is called, which
guide section it points at or which public names it covers reads it from here: the pytest markers
(``phaseN_taskM``), the grader's folders, each criterion's guide link, the course test suite and the
README's phase table. A phase with a single part keeps its code directly in its folder
(``phase1_basics/{starter,reference}``); a phase with several has one folder per part
(``phase2_optimization/quantization/{starter,reference}``), named the same way in criteria ids
(``p2.quantization.*``), grader folders (``graders/phase2/quantization/``), unit tests
(``tests/phase2_quantization/``), notebooks (``notebooks/phase2_quantization.ipynb``) and
``make grade PHASE=2 PART=quantization``.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

__all__ = ["REPO_ROOT", "MANIFEST", "CourseError", "Task", "Part", "Phase", "load_course", "parse_course", "phase",
           "phases", "slug", "task_marker", "markers", "render_phase_table", "render_readme"]

REPO_ROOT = Path(__file__).resolve().parents[1]
MANIFEST = Path(__file__).with_name("course.toml")


class CourseError(ValueError):
    """The manifest is malformed, or names a phase, part or task that does not exist."""


def slug(heading: str) -> str:
    """GitHub's anchor for a markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def task_marker(phase: int, task: int) -> str:
    """The pytest marker of one task: ``phase2_task4``."""
    return f"phase{phase}_task{task}"


@dataclass(frozen=True)
class Task:
    """One exercise group: ``Task {phase}.{number}: {title}`` in the part's guide."""

    phase: int
    part: str | None
    number: int
    title: str
    exercises: tuple[str, ...]
    guide: str            # repo-relative path of the guide that teaches it

    @property
    def label(self) -> str:
        return f"{self.phase}.{self.number}"

    @property
    def heading(self) -> str:
        return f"Task {self.label}: {self.title}"

    @property
    def anchor(self) -> str:
        return slug(self.heading)

    @property
    def link(self) -> str:
        """``phase2_optimization/QUANTIZATION_GUIDE.md#task-24-...``: what hints and stubs point at."""
        return f"{self.guide}#{self.anchor}"

    @property
    def marker(self) -> str:
        return task_marker(self.phase, self.number)


@dataclass(frozen=True)
class Part:
    """One part of a phase: its code folder, guide, notebook and tasks.

    ``name`` is None for a phase that has a single part (its code sits in the phase folder itself).
    """

    phase: int
    name: str | None
    folder: str           # repo-relative: "phase1_basics" or "phase2_optimization/quantization"
    guide: str            # repo-relative path
    notebook: str | None  # repo-relative path, or None
    summary: str
    status: str
    tasks: tuple[Task, ...] = ()

    @property
    def key(self) -> str:
        """``"2.quantization"``, or ``"1"`` for a single-part phase: ids of tests and reports."""
        return f"{self.phase}.{self.name}" if self.name else str(self.phase)

    @property
    def package(self) -> str:
        """The importable package of the part: ``phase2_optimization.quantization``."""
        return self.folder.replace("/", ".")

    def impl_module(self, impl: str) -> str:
        """``phase2_optimization.quantization.starter`` (impl is ``starter`` or ``reference``)."""
        return f"{self.package}.{impl}"

    @property
    def id_prefix(self) -> str:
        """Every criterion of this part has an id starting with this: ``p2.quantization.``, ``p1.``."""
        return f"p{self.phase}.{self.name}." if self.name else f"p{self.phase}."

    @property
    def grader_dir(self) -> str:
        """Repo-relative folder of the part's criteria: ``graders/phase2/quantization``."""
        return f"graders/phase{self.phase}" + (f"/{self.name}" if self.name else "")

    @property
    def tests_dir(self) -> str:
        """Repo-relative folder of the part's unit tests: ``tests/phase2_quantization``."""
        return f"tests/phase{self.phase}" + (f"_{self.name}" if self.name else "")

    @property
    def planned(self) -> bool:
        return not self.tasks

    def task(self, number: int) -> Task:
        for t in self.tasks:
            if t.number == number:
                return t
        raise CourseError(f"part {self.key} has no task {self.phase}.{number}")


@dataclass(frozen=True)
class Phase:
    number: int
    folder: str
    title: str
    status: str
    parts: tuple[Part, ...] = field(default=())

    @property
    def multipart(self) -> bool:
        return any(p.name for p in self.parts)

    @property
    def tasks(self) -> tuple[Task, ...]:
        return tuple(t for p in self.parts for t in p.tasks)

    def part(self, name: str | None) -> Part:
        """The part called ``name``; for a single-part phase, None (or its only part's name) selects it."""
        for p in self.parts:
            if p.name == name or (name is None and not self.multipart):
                return p
        names = [p.name for p in self.parts if p.name]
        raise CourseError(f"phase {self.number} has no part {name!r}" + (f"; parts are {names}" if names else
                                                                          " (it has a single part)"))

    def part_of_task(self, number: int) -> Part:
        for p in self.parts:
            if any(t.number == number for t in p.tasks):
                return p
        raise CourseError(f"phase {self.number} has no task {self.number}.{number}")

    def task(self, number: int) -> Task:
        return self.part_of_task(number).task(number)


# ## Loading ----------------------------------------------------------------------------------------

def _tasks(raw: list, phase: int, part: str | None, guide: str, where: str) -> tuple[Task, ...]:
    tasks = []
    for t in raw:
        try:
            tasks.append(Task(phase=phase, part=part, number=int(t["number"]), title=str(t["title"]),
                              exercises=tuple(t.get("exercises", ())), guide=guide))
        except (KeyError, TypeError, ValueError) as e:
            raise CourseError(f"{where}: a task needs a number and a title ({e!r})") from e
    return tuple(tasks)


def _part(raw: dict, *, phase: int, name: str | None, phase_folder: str, status: str, where: str) -> Part:
    if "guide" not in raw:
        raise CourseError(f"{where}: missing key 'guide'")
    guide = f"{phase_folder}/{raw['guide']}"
    nb = raw.get("notebook")
    return Part(phase=phase, name=name, folder=f"{phase_folder}/{name}" if name else phase_folder, guide=guide,
                notebook=f"notebooks/{nb}" if nb else None, summary=raw.get("summary", ""),
                status=raw.get("status", status), tasks=_tasks(raw.get("tasks", []), phase, name, guide, where))


def parse_course(data: dict) -> dict[int, Phase]:
    """The manifest's phases by number; raises CourseError when it is malformed."""
    out: dict[int, Phase] = {}
    for key, raw in sorted(data.get("phases", {}).items(), key=lambda kv: int(kv[0])):
        n, where = int(key), f"course.toml: phases.{key}"
        for k in ("folder", "title"):
            if k not in raw:
                raise CourseError(f"{where}: missing key {k!r}")
        status = raw.get("status", "graded")
        if "parts" in raw:
            if "tasks" in raw or "guide" in raw:
                raise CourseError(f"{where}: a phase with parts declares its guide and tasks in each part")
            parts = tuple(_part(p, phase=n, name=name, phase_folder=raw["folder"], status=status,
                                where=f"{where}.parts.{name}") for name, p in raw["parts"].items())
        else:
            parts = (_part(raw, phase=n, name=None, phase_folder=raw["folder"], status=status, where=where),)
        numbers = [t.number for p in parts for t in p.tasks]
        if len(set(numbers)) != len(numbers):
            raise CourseError(f"{where}: task numbers repeat across its parts: {numbers}")
        out[n] = Phase(number=n, folder=raw["folder"], title=raw["title"], status=status, parts=parts)
    if not out:
        raise CourseError("course.toml declares no phases")
    return out


@lru_cache(maxsize=None)
def load_course(path: Path = MANIFEST) -> dict[int, Phase]:
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise CourseError(f"cannot read the course manifest {path}: {e}") from e
    return parse_course(data)


def phases() -> list[Phase]:
    return list(load_course().values())


def phase(number: int) -> Phase:
    course = load_course()
    if number not in course:
        raise CourseError(f"unknown phase {number}; phases are {sorted(course)}")
    return course[number]


def markers() -> list[str]:
    """Every pytest marker the course uses, as ``"name: description"`` lines for ``addinivalue_line``."""
    out = [f"{t.marker}: Task {t.label}, {t.title}" for p in phases() for t in p.tasks]
    return out


# ## The README's phase table, generated from the manifest ------------------------------------------

README_BEGIN = "<!-- BEGIN phase table: generated by `make outcomes` from graders/course.toml -->"
README_END = "<!-- END phase table -->"


def render_phase_table() -> str:
    """One row per part: phase, folder, what the learner builds, guide, status."""
    rows = ["| phase | part | folder | you build | guide | status |", "| --- | --- | --- | --- | --- | --- |"]
    for ph in phases():
        for p in ph.parts:
            tasks = f" (tasks {p.tasks[0].label}-{p.tasks[-1].label})" if len(p.tasks) > 1 else ""
            rows.append(f"| {ph.number} {ph.title} | {p.name or '-'} | `{p.folder}/` | {p.summary}{tasks} | "
                        f"`{p.guide.rsplit('/', 1)[-1]}` | {p.status} |")
    return "\n".join(rows)


def render_readme(text: str) -> str:
    start, end = text.find(README_BEGIN), text.find(README_END)
    if start < 0 or end < start:
        raise CourseError(f"README.md has no generated phase table: add the lines\n{README_BEGIN}\n{README_END}")
    return text[:start] + README_BEGIN + "\n" + render_phase_table() + "\n" + text[end:]
