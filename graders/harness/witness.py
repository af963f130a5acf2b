"""The grader's clock on the very calls a learner times: truth that machine noise cannot move.

Comparing a learner's timing with a separate grader timing taken a moment later compares two
different windows of a shared machine: if the machine changes speed in between (a neighbour wakes
up, a laptop's clock steps), a correct timer looks wrong. A :class:`Witness` wraps the callable the
learner is given and times every call with the grader's clock, so the learner's figure can be held
against the grader's figure **for the same calls**. The ratio of the two is then about the learner's
method alone (their timed region, their statistic), whatever the machine did.

The witness adds two clock reads and a list append per call (well under a microsecond), which the
criteria that use it (calls of milliseconds) cannot see.
"""
from __future__ import annotations

from typing import Any, Callable

from .stats import Summary, summarize
from .timing import now_ns

__all__ = ["Witness", "WitnessedRun"]


class WitnessedRun:
    """The calls witnessed while this context was open: ``ms`` in call order (milliseconds)."""

    def __init__(self, witness: Witness):
        self._witness = witness
        self._start = 0
        self.ms: list[float] = []

    def __enter__(self) -> WitnessedRun:
        self._start = len(self._witness.ms)
        return self

    def __exit__(self, *exc) -> None:
        self.ms = self._witness.ms[self._start:]

    @property
    def calls(self) -> int:
        return len(self.ms)

    def timed(self, iterations: int) -> Summary:
        """The last ``iterations`` calls: the ones a correct timer times (warm-up calls come first)."""
        if not self.ms:
            raise ValueError("no calls were witnessed")
        return summarize(self.ms[-iterations:] if iterations > 0 else self.ms)


class Witness:
    """A callable wrapper that times each call of ``fn`` with the grader's clock.

    ``with witness.run() as run: learner.call(..., witness, ...)``; ``run.ms`` then holds the
    duration (ms) of each call of ``fn`` made during that learner call.
    """

    def __init__(self, fn: Callable[..., Any]):
        self._fn = fn
        self.ms: list[float] = []

    def __call__(self, *args, **kwargs):
        t0 = now_ns()
        try:
            return self._fn(*args, **kwargs)
        finally:
            self.ms.append((now_ns() - t0) / 1e6)

    def run(self) -> WitnessedRun:
        return WitnessedRun(self)
