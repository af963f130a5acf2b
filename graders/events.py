"""The events a grading child streams to the runner, one JSON object per line of ``records.jsonl``.

The child (``graders.plugin``) writes them as it goes, signed, on a pipe (``graders.channel``); the parent
(``graders.runner``) reads them to know which criterion is running (to enforce its time and memory limits)
and what each one measured. The child reports raw measurements only (:class:`End`): the parent, which
never imports learner code, decides every verdict and point from its own copy of the thresholds
(``graders.decide``).
Each event is a small dataclass; :func:`encode` and :func:`decode` are the only places that know the
wire format, so a typo in an event name or field is an error here, not a silent miss in the runner.
"""
from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

__all__ = ["Event", "Session", "ImportStart", "ImportEnd", "Start", "End", "Flag", "GraderError", "SessionEnd",
           "OUTCOMES", "SEVERITIES", "EventError", "encode", "decode"]

#: How a criterion's test ended, as the child saw it (the parent turns it into a verdict):
#: ``recorded`` a measurement to judge; ``failed`` the criterion failed it outright (a correctness gate);
#: ``raised`` the learner's code raised or returned something unusable (a SubmissionError);
#: ``skipped`` the grader skipped it (no GPU...); ``error`` the grader broke;
#: ``empty`` the test recorded nothing.
OUTCOMES = ("recorded", "failed", "raised", "skipped", "error", "empty")
#: ``tampered``: the learner's code touched the grader (fails the criterion running); ``flag``: something no
#: honest submission needs, reported to the instructor.
SEVERITIES = ("tampered", "flag")


class EventError(ValueError):
    """A line of records.jsonl that is not a known event with the right fields."""


@dataclass
class Event:
    kind: ClassVar[str] = ""
    t: float = field(default_factory=time.time, kw_only=True)


@dataclass
class Session(Event):
    """The child is ready: the profile it detected and the machine it runs on."""

    kind: ClassVar[str] = "session"
    profile: str
    fingerprint: dict[str, Any]
    pid: int


@dataclass
class ImportStart(Event):
    """The learner's package is being imported (the import has its own time limit)."""

    kind: ClassVar[str] = "import_start"
    guards: list[str] = field(default_factory=list)  # the child's own protections, installed just before
    workload_ms: float | None = None  # the grader's fixed workload, timed before any learner code existed


@dataclass
class ImportEnd(Event):
    kind: ClassVar[str] = "import_end"
    error: str | None = None


@dataclass
class Start(Event):
    """Criterion ``id`` started; the limits the parent enforces while it runs."""

    kind: ClassVar[str] = "start"
    id: str
    time_limit_s: float
    memory_limit_mb: float


@dataclass
class End(Event):
    """Criterion ``id`` finished: what it measured (raw), never its verdict or points.

    ``value`` is in the criterion's unit; ``interval`` the plausible range of ``value``; ``noisy`` whether the
    noise could flip the verdict; ``noise`` the machine's noise in the same windows; ``hint`` the hint the
    measurement suggests; ``outcome`` one of :data:`OUTCOMES`.
    """

    kind: ClassVar[str] = "end"
    id: str
    outcome: str
    value: float | None = None
    interval: list[float] | None = None
    noisy: bool = False
    noise: float | None = None
    message: str = ""
    hint: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise TypeError(f"outcome {self.outcome!r} not in {OUTCOMES}")


@dataclass
class Flag(Event):
    """The learner's code did something the grader watches for (see ``graders.tamper``).

    ``severity`` is one of :data:`SEVERITIES`; ``what`` says it in a sentence; ``where`` the learner's file
    and line when known.
    """

    kind: ClassVar[str] = "flag"
    severity: str
    what: str
    where: str = ""

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise TypeError(f"severity {self.severity!r} not in {SEVERITIES}")


@dataclass
class GraderError(Event):
    kind: ClassVar[str] = "grader_error"
    message: str


@dataclass
class SessionEnd(Event):
    """The child is done; the phase modules it imported (tests prove the reference never is, unless graded)."""

    kind: ClassVar[str] = "session_end"
    modules: list[str]


_KINDS: dict[str, type[Event]] = {c.kind: c for c in (Session, ImportStart, ImportEnd, Start, End, Flag,
                                                       GraderError, SessionEnd)}


def encode(event: Event) -> str:
    """One line of records.jsonl (with its newline)."""
    return json.dumps({"event": event.kind, **dataclasses.asdict(event)}, default=str) + "\n"


def decode(line: str) -> Event:
    """The event on one line; raises EventError when it is not valid JSON or not a known event."""
    try:
        raw = json.loads(line)
        cls = _KINDS[raw.pop("event")]
        return cls(**raw)
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as e:
        raise EventError(f"not a grading event: {line[:200]!r} ({type(e).__name__}: {e})") from None
