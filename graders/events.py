"""The events a grading child streams to the runner, one JSON object per line of ``records.jsonl``.

The child (``graders.plugin``) writes them as it goes; the parent (``graders.runner``) reads them to
know which criterion is running (to enforce its time and memory limits) and what each one earned.
Each event is a small dataclass; :func:`encode` and :func:`decode` are the only places that know the
wire format, so a typo in an event name or field is an error here, not a silent miss in the runner.
"""
from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

__all__ = ["Event", "Session", "ImportStart", "ImportEnd", "Start", "End", "GraderError", "SessionEnd",
           "EventError", "encode", "decode"]


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
    """Criterion ``id`` finished; ``result`` is a :class:`graders.records.CriterionResult` as a dict."""

    kind: ClassVar[str] = "end"
    id: str
    result: dict[str, Any]


@dataclass
class GraderError(Event):
    kind: ClassVar[str] = "grader_error"
    message: str


@dataclass
class SessionEnd(Event):
    """The child is done; the phase modules it imported (tests prove the reference never is, unless graded)."""

    kind: ClassVar[str] = "session_end"
    modules: list[str]


_KINDS: dict[str, type[Event]] = {c.kind: c for c in (Session, ImportStart, ImportEnd, Start, End, GraderError,
                                                       SessionEnd)}


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
