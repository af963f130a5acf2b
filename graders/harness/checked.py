"""Outputs of timed calls, checked after the timing: no speed credit for calls that were fast because wrong.

A criterion checks the learner's outputs once before it times them, but a model can be right on the
calls it is checked on and wrong (cheap) on the calls that are timed. So the timers
(:func:`~.paired.paired_ratio`, :func:`~.timing.time_callable`, :meth:`~.timing.GraderTimer.time`) can
keep what every call returned, and once the measurement is over (never inside a timed region) hand
each result to the criterion's ``check``. The first problem fails the criterion through a
:class:`~graders.submission.SubmissionError` that names the call.

Kept outputs are copies taken after the clock stopped (tensors cloned, arrays copied, recursively in
lists, tuples and dicts), so a runner that reuses one output buffer is checked on what each call
returned, not on what its buffer holds at the end. Other objects are kept as they are.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

from ..submission import SubmissionError

__all__ = ["DURING_TIMING", "snapshot", "first_problem", "raise_first_problem"]

#: What every such failure adds, so the learner knows why a model that passed the first check fails.
DURING_TIMING = ("outputs are checked during timing too, not only before it: every call must return "
                 "the right answer, however it is made faster")


def snapshot(out: Any) -> Any:
    """``out`` as it is now: tensors cloned (detached), numpy arrays copied, containers rebuilt; anything else as is."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is always installed with the grader
        torch = None
    if torch is not None and isinstance(out, torch.Tensor):
        return out.detach().clone()
    if type(out).__module__ == "numpy" and hasattr(out, "copy"):
        return out.copy()
    if isinstance(out, (list, tuple)) and type(out) in (list, tuple):
        return type(out)(snapshot(o) for o in out)
    if isinstance(out, dict) and type(out) is dict:
        return {k: snapshot(v) for k, v in out.items()}
    return out


def first_problem(results: Sequence[tuple], check: Callable[..., str | None]) -> tuple[int, str] | None:
    """``(k, problem)`` for the first ``check(*results[k - 1])`` that found one (1-based ``k``), else None.

    ``check`` returns None when the result is right, else a one-line problem; a ``SubmissionError`` it
    raises (``as_tensor``, ``expect`` ...) counts as the problem too. Any other exception is the
    grader's own and propagates.
    """
    for k, args in enumerate(results, 1):
        try:
            problem = check(*args)
        except SubmissionError as e:
            problem = str(e)
        if problem:
            return k, str(problem)
    return None


def raise_first_problem(results: list[tuple], check: Callable[..., str | None] | None, *,
                        warmup: int = 0) -> None:
    """Check every kept result, then release them; raise ``SubmissionError`` naming the first bad call.

    Args:
        results: one tuple of ``check``'s arguments per call, in call order (warm-up calls first).
        check: see :func:`first_problem`; None checks nothing.
        warmup: how many of the first results came from untimed warm-up calls (marked so in the message;
            calls are counted from the first warm-up call, ``k`` of ``n`` = ``len(results)``).
    """
    if check is None:
        results.clear()
        return
    try:
        found = first_problem(results, check)
        n = len(results)
    finally:
        results.clear()
    if found is not None:
        k, problem = found
        which = f"timed call {k} of {n}" + (" (warm-up)" if k <= warmup else "")
        raise SubmissionError(f"{which}: {problem} - {DURING_TIMING}")
