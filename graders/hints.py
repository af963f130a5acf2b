"""Hints computed from what was measured, not repeated from the guide.

A criterion that did not earn full marks gets a hint built here, in this order:

1. what the criterion itself diagnosed from its measurement (``Grade.record(hint=...)``: for example
   "your timed region holds about 2 calls of fn"), else the spec's hint from EXPECTED_OUTCOMES.md;
2. for a partial pass, how far the value is from full marks and what usually closes that gap (the
   spec's ``to_full``);
3. which samples were outliers, when the criterion kept its samples (``details["samples"]``);
4. when the machine's noise could have decided (inconclusive, or a fail measured on a noisy machine),
   that it was the machine, with the figure, and how to quiet it.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .verdicts import NOISE_LIMIT

__all__ = ["compose_hint", "outlier_note", "quiet_machine_advice"]

#: A sample further than this many IQRs outside the quartiles is called an outlier (Tukey's "far out").
OUTLIER_IQRS = 3.0


def quiet_machine_advice(spec) -> str:
    """How to re-run one criterion's task on a quieter machine (commands a learner can paste)."""
    sel = f"PHASE={spec.phase}" + (f" PART={spec.part}" if spec.part else "") + f" TASK={spec.task}"
    return (f"Quiet the machine and re-run only this task: close other work (browser tabs, IDE indexing, builds), "
            f"plug in a laptop, pin the grade to one core with `taskset -c 1 make grade {sel}`, "
            f"or pick the hardware profile by hand with `PROFILE=`.")


def outlier_note(details: dict[str, Any], limit: int = 3) -> str:
    """``"2 of 80 'your p50 ms' samples were outliers: #7 4.1, #33 3.9 (median 2.0)"``, or ``""``."""
    samples = details.get("samples")
    if not isinstance(samples, dict):
        return ""
    unit = str(details.get("samples_unit", ""))
    notes = []
    for label, values in samples.items():
        try:
            a = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError):
            continue
        if a.size < 5:
            continue
        q1, med, q3 = np.percentile(a, [25, 50, 75])
        iqr = q3 - q1
        if iqr <= 0:
            continue
        out = np.flatnonzero((a > q3 + OUTLIER_IQRS * iqr) | (a < q1 - OUTLIER_IQRS * iqr))
        if out.size:
            shown = ", ".join(f"#{i + 1} {a[i]:.4g}" for i in out[:limit]) + (" ..." if out.size > limit else "")
            notes.append(f"{out.size} of {a.size} '{label}' samples were outliers ({shown}; median {med:.4g}{unit})")
    if not notes:
        return ""
    return "; ".join(notes) + ": something else ran during those samples, or the timed region is not always the same work."


def _fmt(v: float, unit: str) -> str:
    return f"{v:.4g}{unit}"


def compose_hint(spec, thresholds, *, verdict: str, points: float, value: float | None,
                 measured_hint: str = "", noise: float | None = None, details: dict | None = None) -> str:
    """The hint shown for one criterion; ``""`` for a pass at full marks.

    Args:
        spec: the criterion's ``CriterionSpec``; thresholds: its ``Thresholds`` for the profile (or None).
        verdict, points: the decided verdict and points.
        value: the grader's measurement (criterion unit).
        measured_hint: what the criterion diagnosed from its measurement ("" if nothing specific).
        noise: the machine's noise measured in the same windows (IQR/median scale), if the criterion took it.
        details: the criterion's details (``samples`` are scanned for outliers).
    """
    details = details or {}
    full_marks = verdict == "pass" and points >= spec.points
    if full_marks or verdict == "skipped":
        return ""
    noisy = noise is not None and noise > NOISE_LIMIT
    parts: list[str] = []
    if verdict == "inconclusive":
        figure = f" (noise {noise:.0%} in the same windows; limit {NOISE_LIMIT:.0%})" if noise is not None else ""
        return f"The machine's noise decided this, not your code{figure}. {quiet_machine_advice(spec)}"
    if verdict == "pass" and thresholds is not None and value is not None:
        sign = ">=" if spec.better == "higher" else "<="
        gap = abs(thresholds.full - value)
        parts.append(f"{points:g}/{spec.points:g}: full marks at {sign} {_fmt(thresholds.full, spec.unit)}, "
                     f"measured {_fmt(value, spec.unit)} ({_fmt(gap, spec.unit)} to go).")
        parts.append(getattr(spec, "to_full", "") or measured_hint or spec.hint)
    else:
        parts.append(measured_hint or spec.hint)
    note = outlier_note(details)
    if note:
        parts.append(note[0].upper() + note[1:])
    if noisy:
        parts.append(f"The machine was noisy while this ran ({noise:.0%}, limit {NOISE_LIMIT:.0%}), which may have cost "
                     f"points. {quiet_machine_advice(spec)}")
    text = " ".join(p.strip() for p in parts if p and p.strip())
    return f"{text} (guide: {spec.guide})" if text and spec.guide else text
