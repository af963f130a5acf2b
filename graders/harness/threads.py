"""Pinned thread counts, so that A and B in a comparison run with the same parallelism."""
from __future__ import annotations

import contextlib
import os

__all__ = ["default_threads", "pin_threads", "ort_session_options", "threads"]


def default_threads() -> int:
    """The cores this process may use (the grader pins PyTorch and ONNX Runtime to this)."""
    env = os.environ.get("INFERENCE_LAB_THREADS")
    if env:
        return max(1, int(env))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def pin_threads(n: int | None = None) -> int:
    """Set PyTorch's intra-op threads to ``n`` (default: usable cores); return the count."""
    import torch

    n = n or default_threads()
    torch.set_num_threads(n)
    return n


def ort_session_options(n: int | None = None):
    """ONNX Runtime SessionOptions with intra-op threads pinned like PyTorch's."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = n or default_threads()
    so.inter_op_num_threads = 1
    return so


@contextlib.contextmanager
def threads(n: int):
    """Run a block with PyTorch pinned to ``n`` intra-op threads, then restore the previous count.

    Stability criteria use one thread: on a shared machine a multi-threaded op waits for its slowest
    core, and a neighbour stealing one core shifts the whole timing (seen here: 1.0 ms <-> 1.6 ms
    level shifts with 2 threads, a steady 1.55 ms with 1).
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(before)
