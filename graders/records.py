"""What a grade produces: one record per criterion, one run record per grade.

These dataclasses are the contract between the grading session (``graders.plugin``), the
orchestrator (``graders.runner``) and the writers in ``graders.reporting``. They are plain data:
everything is JSON-serialisable through :meth:`to_dict` / :meth:`from_dict`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

__all__ = ["VERDICTS", "CriterionResult", "GradeRun"]

#: Every verdict a criterion can end with.
#: ``pass``/``fail`` are decided by the thresholds; ``inconclusive`` means the measurement stayed
#: too noisy to decide (figures are reported, no points); ``skipped`` carries a reason (no GPU, ...);
#: ``error`` means the grader itself broke on this criterion (exit code 2), never the learner's fault.
VERDICTS = ("pass", "fail", "inconclusive", "skipped", "error")


@dataclass
class CriterionResult:
    """The outcome of one graded criterion.

    ``value`` is the grader's own measurement in ``unit``; ``threshold_pass`` / ``threshold_full``
    come from the phase's EXPECTED_OUTCOMES.md block for the active profile. ``points`` is what was
    earned out of ``max_points`` (``max_points`` is 0 for a skipped criterion, so skips never count
    against a learner). ``message`` says what was measured in one sentence; ``hint`` says what to do
    and names the guide section. ``details`` holds raw figures (samples, ratios) for reports.
    """

    id: str
    title: str
    phase: int
    task: int
    guide: str
    metric: str
    unit: str
    better: str  # "higher" | "lower" | "equal"
    verdict: str
    points: float
    max_points: float
    required: bool = True
    value: float | None = None
    threshold_pass: float | None = None
    threshold_full: float | None = None
    message: str = ""
    hint: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0
    gpu: bool = False

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict {self.verdict!r} not in {VERDICTS}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "CriterionResult":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass
class GradeRun:
    """One grade of one phase: the criteria, the machine, and the totals.

    ``exit_code`` follows the brief: 0 every required criterion passed (or skipped with a reason),
    1 some required criterion failed or stayed inconclusive, 2 the grader itself could not run.
    """

    phase: int
    impl: str
    submission: str
    profile: str
    fingerprint: dict[str, Any]
    started_at: str
    duration_s: float
    criteria: list[CriterionResult]
    quick: bool = False
    grader_errors: list[str] = field(default_factory=list)
    benchmark_json: str | None = None

    @property
    def points(self) -> float:
        return round(sum(c.points for c in self.criteria), 2)

    @property
    def max_points(self) -> float:
        return round(sum(c.max_points for c in self.criteria), 2)

    @property
    def exit_code(self) -> int:
        if self.grader_errors or any(c.verdict == "error" for c in self.criteria):
            return 2
        if any(c.required and c.verdict in ("fail", "inconclusive") for c in self.criteria):
            return 1
        return 0

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["points"] = self.points
        d["max_points"] = self.max_points
        d["exit_code"] = self.exit_code
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "GradeRun":
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        kw["criteria"] = [CriterionResult.from_dict(c) for c in d.get("criteria", [])]
        return cls(**kw)
