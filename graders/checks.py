"""Validate what learner code returns; anything off becomes a SubmissionError with a clear message.

Criteria call these instead of ``assert`` so a wrong type, shape or NaN fails the criterion with a
sentence the learner can act on, and never looks like a bug in the grader.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

from .submission import SubmissionError

__all__ = ["expect", "as_float", "as_int", "as_tensor", "get_field", "rel_err"]


def expect(cond: bool, message: str) -> None:
    if not cond:
        raise SubmissionError(message)


def as_float(x: Any, what: str, *, finite: bool = True) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise SubmissionError(f"{what} should be a number, got {type(x).__name__}: {x!r:.80}") from None
    if finite and not math.isfinite(v):
        raise SubmissionError(f"{what} is {v}, expected a finite number")
    return v


def as_int(x: Any, what: str) -> int:
    if isinstance(x, bool) or not isinstance(x, (int,)) and not (hasattr(x, "__index__")):
        raise SubmissionError(f"{what} should be an int, got {type(x).__name__}: {x!r:.80}")
    return int(x)


def get_field(obj: Any, name: str, what: str) -> Any:
    """``obj.name`` (dataclass / object) or ``obj[name]`` (dict), else a SubmissionError."""
    if isinstance(obj, dict):
        if name in obj:
            return obj[name]
    elif hasattr(obj, name):
        return getattr(obj, name)
    raise SubmissionError(f"{what} has no field {name!r} (got {type(obj).__name__})")


def as_tensor(x: Any, what: str, *, shape: Sequence[int] | None = None, finite: bool = True):
    import numpy as np
    import torch

    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if isinstance(x, (list, tuple)) and len(x) == 1 and isinstance(x[0], (torch.Tensor, np.ndarray)):
        x = torch.as_tensor(x[0])
    if not isinstance(x, torch.Tensor):
        raise SubmissionError(f"{what} should be a torch.Tensor, got {type(x).__name__}")
    if shape is not None and tuple(x.shape) != tuple(shape):
        raise SubmissionError(f"{what} has shape {tuple(x.shape)}, expected {tuple(shape)}")
    if finite and x.is_floating_point() and not bool(torch.isfinite(x).all()):
        raise SubmissionError(f"{what} contains NaN or inf")
    return x.detach().float().cpu()


def rel_err(got: float, want: float) -> float:
    if want == 0:
        return abs(got)
    return abs(got - want) / abs(want)
