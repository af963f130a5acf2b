"""Pinned thread counts, so that A and B in a comparison run with the same parallelism."""
from __future__ import annotations

import os

__all__ = ["default_threads", "pin_threads", "ort_session_options"]


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
