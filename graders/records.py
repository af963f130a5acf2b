"""What a grade produces: one record per criterion, one run record per grade.

These dataclasses are the contract between the grading session (``graders.plugin``), the
orchestrator (``graders.runner``) and the writers in ``graders.reporting``. They are plain data:
everything is JSON-serialisable through :meth:`to_dict` / :meth:`from_dict`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .outcomes import CriterionSpec, Thresholds

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
    part: str | None = None
    tampered: str = ""  # why the grader could not trust this criterion's measurement (a failed verdict)

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict {self.verdict!r} not in {VERDICTS}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_spec(cls, spec: "CriterionSpec", thresholds: "Thresholds | None", *, verdict: str,
                  points: float = 0.0, value: float | None = None, message: str = "", hint: str | None = None,
                  details: dict[str, Any] | None = None, duration_s: float = 0.0,
                  tampered: str = "") -> "CriterionResult":
        """A result carrying ``spec``'s metadata; the only place a result is built from a criterion.

        ``hint`` defaults to the spec's hint with its guide link for a fail, and to nothing for any other
        verdict. A skipped criterion is worth 0 points (``max_points`` 0), so it never counts against anyone.
        """
        if hint is None:
            hint = f"{spec.hint} (guide: {spec.guide})" if verdict == "fail" else ""
        return cls(id=spec.id, title=spec.title, phase=spec.phase, part=spec.part, task=spec.task,
                   guide=spec.guide, metric=spec.metric, unit=spec.unit, better=spec.better, verdict=verdict,
                   points=points, max_points=0.0 if verdict == "skipped" else spec.points,
                   required=spec.required, gpu=spec.gpu, value=value, message=message, hint=hint,
                   threshold_pass=thresholds.pass_ if thresholds else None,
                   threshold_full=thresholds.full if thresholds else None,
                   details=dict(details or {}), duration_s=round(duration_s, 3), tampered=tampered)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "CriterionResult":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass
class GradeRun:
    """One grade of one phase: the criteria, the machine, and the totals.

    ``exit_code``: 0 every required criterion passed (or skipped with a reason),
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
    part: str | None = None        # the part graded alone (make grade PART=...), None for every part
    task: int | None = None        # the task graded alone (make grade TASK=...), None for every task
    benchmark_json: str | None = None
    #: protection -> "on: how" or "off: why not" (the sandbox, the audit hook, the unprivileged user...)
    protections: dict[str, str] = field(default_factory=dict)
    #: what the learner's code did that the grader watches for: {"severity", "what", "where", "criterion"}
    flags: list[dict[str, str]] = field(default_factory=list)

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
