"""``results.json``: the course's own machine-readable grade (schema version 1).

One object per run with the run's identity, the machine fingerprint, the totals and a
``criteria`` list whose keys are (id, description, guide_section, metric, value,
threshold, unit, verdict, points, hint, ...). The file is strict JSON: NaN and infinities are
written as ``null``, so :func:`read_results_json` gives ``None`` back for them.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from graders.records import CriterionResult, GradeRun
from graders.reporting._format import atomic_write_text, json_safe

__all__ = ["SCHEMA_VERSION", "CRITERION_KEYS", "results_dict", "write_results_json",
           "read_results_json"]

SCHEMA_VERSION = 1

#: Keys every entry of ``criteria`` carries (``phase`` is kept too, for an exact round trip).
CRITERION_KEYS = (
    "id", "description", "task", "guide_section", "metric", "value", "threshold", "unit",
    "verdict", "points", "max_points", "required", "message", "hint", "details", "duration_s",
    "gpu", "tampered",
)


def _criterion_dict(c: CriterionResult) -> dict[str, Any]:
    return {
        "id": c.id,
        "description": c.title,
        "phase": c.phase,
        "task": c.task,
        "guide_section": c.guide,
        "metric": c.metric,
        "value": c.value,
        "threshold": {"pass": c.threshold_pass, "full": c.threshold_full, "better": c.better},
        "unit": c.unit,
        "verdict": c.verdict,
        "points": c.points,
        "max_points": c.max_points,
        "required": c.required,
        "message": c.message,
        "hint": c.hint,
        "details": c.details,
        "duration_s": c.duration_s,
        "gpu": c.gpu,
        "tampered": c.tampered,
    }


def results_dict(run: GradeRun) -> dict[str, Any]:
    """The results.json content as plain, strictly JSON-safe data."""
    return json_safe({
        "schema_version": SCHEMA_VERSION,
        "phase": run.phase,
        "impl": run.impl,
        "submission": run.submission,
        "profile": run.profile,
        "quick": run.quick,
        "fingerprint": run.fingerprint,
        "started_at": run.started_at,
        "duration_s": run.duration_s,
        "points": run.points,
        "max_points": run.max_points,
        "exit_code": run.exit_code,
        "grader_errors": list(run.grader_errors),
        "benchmark_json": run.benchmark_json,
        "protections": dict(run.protections),
        "flags": list(run.flags),
        "criteria": [_criterion_dict(c) for c in run.criteria],
    })


def write_results_json(run: GradeRun, path: str | os.PathLike) -> Path:
    """Write ``run`` to ``path`` as results.json (parents created, atomic replace).

    Returns:
        The path written.
    """
    text = json.dumps(results_dict(run), indent=2, ensure_ascii=False, allow_nan=False)
    return atomic_write_text(path, text + "\n")


def _criterion_from(d: dict[str, Any], phase: int) -> CriterionResult:
    threshold = d.get("threshold") or {}
    return CriterionResult(
        id=d["id"],
        title=d.get("description", ""),
        phase=d.get("phase", phase),
        task=d.get("task", 0),
        guide=d.get("guide_section", ""),
        metric=d.get("metric", ""),
        unit=d.get("unit", ""),
        better=threshold.get("better", "higher"),
        verdict=d["verdict"],
        points=d.get("points") or 0.0,
        max_points=d.get("max_points") or 0.0,
        required=d.get("required", True),
        value=d.get("value"),
        threshold_pass=threshold.get("pass"),
        threshold_full=threshold.get("full"),
        message=d.get("message", ""),
        hint=d.get("hint", ""),
        details=d.get("details") or {},
        duration_s=d.get("duration_s") or 0.0,
        gpu=d.get("gpu", False),
        tampered=d.get("tampered", ""),
    )


def read_results_json(path: str | os.PathLike) -> GradeRun:
    """Read a results.json written by :func:`write_results_json` back into a :class:`GradeRun`.

    Raises:
        ValueError: the file is not schema version 1.
    """
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ValueError(f"{path}: results.json schema_version {version!r}, expected {SCHEMA_VERSION}")
    phase = data.get("phase", 0)
    return GradeRun(
        phase=phase,
        impl=data.get("impl", ""),
        submission=data.get("submission", ""),
        profile=data.get("profile", ""),
        fingerprint=data.get("fingerprint") or {},
        started_at=data.get("started_at", ""),
        duration_s=data.get("duration_s") or 0.0,
        criteria=[_criterion_from(c, phase) for c in data.get("criteria", [])],
        quick=data.get("quick", False),
        grader_errors=list(data.get("grader_errors") or []),
        benchmark_json=data.get("benchmark_json"),
        protections=dict(data.get("protections") or {}),
        flags=list(data.get("flags") or []),
    )
