"""From what a grading child measured to a verdict and points: decided by the runner, never by the child.

The child (which runs the learner's code) reports raw measurements in an :class:`graders.events.End`;
:func:`decide` turns one into a :class:`graders.records.CriterionResult` with the runner's own copy of the
criterion's spec and thresholds. A child that lies about its verdict has nothing to lie with: it never
sends one. What the runner can check about a report on its own, it checks here (:func:`implausible`).
"""
from __future__ import annotations

from functools import partial

from .events import End
from .hints import compose_hint
from .outcomes import CriterionSpec, Thresholds
from .records import CriterionResult
from .verdicts import NOISE_LIMIT, judge

__all__ = ["decide", "implausible", "tampered_result", "GPU_SKIP", "NO_THRESHOLD_SKIP"]

GPU_SKIP = "needs an NVIDIA GPU (torch.cuda.is_available() is False)"
NO_THRESHOLD_SKIP = "no threshold for profile {profile!r} in EXPECTED_OUTCOMES.md"


def _fmt(v: float | None) -> str:
    return "none" if v is None else f"{v:.4g}"


def implausible(spec: CriterionSpec, thresholds: Thresholds | None, end: End, *, cuda: bool) -> str:
    """Why the runner cannot believe ``end`` whatever it says ("" when it can).

    A GPU criterion can only be skipped on a machine whose session reported no CUDA, and a criterion with no
    threshold for the profile can only be skipped (or break). A missing or NaN value is not implausible: it is
    judged "no valid measurement".
    """
    if spec.gpu and not cuda and end.outcome != "skipped":
        return "a GPU criterion reported a result on a machine without a GPU"
    if thresholds is None and end.outcome not in ("skipped", "error"):
        return "a criterion with no threshold for this profile reported a result"
    return ""


def tampered_result(spec: CriterionSpec, thresholds: Thresholds | None, why: str, *,
                    duration_s: float = 0.0, details: dict | None = None) -> CriterionResult:
    """A failed criterion marked ``tampered``: the grader could not trust what the child reported."""
    return CriterionResult.from_spec(spec, thresholds, verdict="fail", duration_s=duration_s, details=details,
                                     message=f"TAMPERED: {why}. No credit: the grader could not trust this "
                                             "criterion's measurement.",
                                     hint="Submit code that only does what the task asks; the grader watches its "
                                          "own code, clock and reports (see the course README, 'Grading "
                                          "untrusted submissions').",
                                     tampered=why)


def decide(spec: CriterionSpec, thresholds: Thresholds | None, end: End, *, cuda: bool) -> CriterionResult:
    """The verdict and points of one criterion from the child's raw report ``end``."""
    why = implausible(spec, thresholds, end, cuda=cuda)
    if why:
        return tampered_result(spec, thresholds, why, duration_s=end.duration_s, details=end.details)
    result = partial(CriterionResult.from_spec, spec, thresholds, duration_s=end.duration_s, details=end.details)
    if end.outcome == "skipped":
        return result(verdict="skipped", message=end.message)
    if end.outcome == "error":
        return result(verdict="error", message=end.message)
    if end.outcome == "raised":
        return result(verdict="fail", value=end.value, message=end.message)
    if end.outcome == "empty":
        return result(verdict="error", message="grader error: the criterion recorded nothing")
    th = thresholds
    hint = partial(compose_hint, spec, th, value=end.value, measured_hint=end.hint, noise=end.noise,
                   details=end.details)
    if end.outcome == "failed":
        return result(verdict="fail", value=end.value, message=end.message, hint=hint(verdict="fail", points=0.0))
    interval = tuple(end.interval) if end.interval is not None else None
    v = judge(end.value, th.pass_, th.full, spec.better, spec.points, interval=interval, noisy=end.noisy)
    message = end.message
    sign = ">=" if spec.better == "higher" else "<="
    if v.verdict == "fail":
        message = (f"{spec.metric} = {_fmt(end.value)}{spec.unit}; needs {sign} {th.pass_:g}{spec.unit}. "
                   + message).strip()
        if end.noise is not None:
            message += f" (machine noise in the same windows: {end.noise:.1%}, limit {NOISE_LIMIT:.0%})"
    elif v.note:
        message = f"{v.note}. {message}".strip()
    return result(verdict=v.verdict, points=v.points, value=end.value, message=message,
                  hint=hint(verdict=v.verdict, points=v.points))
