"""Building, probing and stopping the learner's batcher and pool, so that nothing they do can hang a grader."""
from __future__ import annotations

import contextlib
import threading
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import torch

from ...checks import expect
from ...harness import threads
from ...submission import LearnerError, SubmissionError
from .workloads import chain_text

__all__ = ["make_config", "make_batcher", "probe", "stop", "cpu_threads", "learner_error_class", "device_of",
           "atol_for", "no_tf32"]


def device_of(grade) -> str:
    return "cuda" if grade.cuda else "cpu"


def atol_for(grade) -> float:
    """Batched and unbatched float32 differ by summation order only: ~2e-6 here on CPU. On a GPU the
    grader turns TF32 off (:func:`no_tf32`), and cuDNN may still pick other kernels per batch size."""
    return 1e-3 if grade.cuda else 1e-4


def no_tf32(grade) -> None:
    """Full float32 on a GPU, so that a batched answer can be compared with an unbatched one."""
    if grade.cuda:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False


def cpu_threads(grade):
    """One PyTorch thread for every CPU measurement of this phase (both sides of every comparison).

    On a 2-core machine the other core runs the client threads; one intra-op thread also keeps a
    neighbour that steals a core from shifting the whole timing (see ``harness.threads``).
    """
    return contextlib.nullcontext() if grade.cuda else threads(1)


def make_config(learner, *, max_batch_size: int, max_queue_delay_ms: float, max_queue_size: int,
                preferred_batch_sizes: tuple[int, ...] = ()) -> Any:
    return learner.call("BatcherConfig", max_batch_size=max_batch_size, max_queue_delay_ms=max_queue_delay_ms,
                        max_queue_size=max_queue_size, preferred_batch_sizes=preferred_batch_sizes)


def make_batcher(learner, model_fn, *, input_shape: tuple[int, ...], max_batch_size: int,
                 max_queue_delay_ms: float, max_queue_size: int, start: bool = True) -> Any:
    """The learner's ``DynamicBatcher`` on the grader's model, started."""
    config = make_config(learner, max_batch_size=max_batch_size, max_queue_delay_ms=max_queue_delay_ms,
                         max_queue_size=max_queue_size)
    batcher = learner.call("DynamicBatcher", model_fn, config, input_shape=tuple(input_shape), dtype=torch.float32)
    for name in ("submit", "start", "close"):
        expect(callable(getattr(batcher, name, None)), f"DynamicBatcher has no method {name}()")
    if start:
        learner.call_obj(batcher.start, what="DynamicBatcher.start()")
    return batcher


def probe(learner, submit, x: torch.Tensor, *, what: str = "DynamicBatcher.submit(x)", timeout_s: float = 10.0):
    """Send one request and wait for it: stubs and dead workers fail here, with their own message."""
    fut = learner.call_obj(submit, x, what=what)
    expect(isinstance(fut, Future), f"{what} must return a concurrent.futures.Future, got {type(fut).__name__}")
    try:
        return fut.result(timeout=timeout_s)
    except FutureTimeout:
        raise SubmissionError(f"a single request got no answer within {timeout_s:g} s: does the worker's "
                              f"_next_batch() hand out batches and _run_batch() resolve the futures?") from None
    except NotImplementedError as e:
        raise LearnerError(f"not implemented yet: {e}", not_implemented=True) from None
    except Exception as e:  # noqa: BLE001 - the learner's error
        raise LearnerError(f"a single valid request failed: {chain_text(e)[:300]}") from None


def stop(obj: Any, *, drain: bool = True, timeout_s: float = 5.0) -> None:
    """``obj.close(drain=...)`` at most ``timeout_s`` (+1 s), ignoring whatever it raises (cleanup only)."""
    close = getattr(obj, "close", None)
    if not callable(close):
        return

    def run() -> None:
        try:
            close(drain=drain, timeout_s=timeout_s)
        except BaseException:  # noqa: BLE001 - cleanup: a stub or broken close must not hide the grade
            pass

    t = threading.Thread(target=run, name="grader-close", daemon=True)
    t.start()
    t.join(timeout_s + 1.0)


def learner_error_class(learner, name: str) -> type:
    cls = learner.attr(name)
    expect(isinstance(cls, type) and issubclass(cls, BaseException),
           f"{name} should be an exception class (types.py), got {cls!r:.80}")
    return cls
