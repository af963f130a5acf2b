"""Task 1.4: parameter bytes and peak memory, against allocations of known size."""
from __future__ import annotations

import random
import time

import torch
from torch import nn

from ..checks import as_float, expect, get_field, as_int
from ..plugin import criterion
from .workloads import fresh_resident_bytes


def _mixed_model() -> tuple[nn.Module, int]:
    """fp32 weights, BatchNorm buffers (incl. an int64 counter) and an fp16 buffer: known bytes."""
    m = nn.Sequential(nn.Conv2d(3, 16, 3), nn.BatchNorm2d(16), nn.Flatten(), nn.Linear(16 * 30 * 30, 10))
    m.register_buffer("table", torch.zeros(random.randint(100, 999), dtype=torch.float16))
    true = sum(t.numel() * t.element_size() for t in (*m.parameters(), *m.buffers()))
    return m, true


@criterion("p1.param_bytes")
def test_param_bytes(grade, learner):
    m, true = _mixed_model()
    got = as_int(learner.call("parameter_bytes", m), "parameter_bytes(model)")
    grade.record(abs(got - true), message=f"yours {got:,} bytes, true {true:,} bytes")


def _allocate(nbytes: int, hold_s: float = 0.25):
    def fn():
        a = fresh_resident_bytes(nbytes)
        time.sleep(hold_s)
        s = float(a[::4096].sum())
        del a
        return s

    return fn


@criterion("p1.peak_memory")
def test_peak_memory(grade, learner):
    nbytes = random.randint(192, 320) * 2**20  # random per grade: a constant cannot pass
    rep = learner.call("peak_memory_during", _allocate(nbytes), device="cpu")
    delta = as_float(get_field(rep, "delta_bytes", "MemoryReport"), "delta_bytes")
    base = as_float(get_field(rep, "baseline_bytes", "MemoryReport"), "baseline_bytes")
    peak = as_float(get_field(rep, "peak_bytes", "MemoryReport"), "peak_bytes")
    expect(abs(peak - base - delta) <= 1, "delta_bytes must equal peak_bytes - baseline_bytes")
    err = abs(delta / nbytes - 1) * 100
    grade.record(err, message=f"yours {delta / 2**20:.1f} MiB for an allocation of {nbytes / 2**20:.0f} MiB",
                 details={"allocated_bytes": nbytes, "your_delta_bytes": delta})


@criterion("p1.cuda_peak_memory")
def test_cuda_peak_memory(grade, learner):
    nbytes = random.randint(256, 768) * 2**20

    def fn():
        t = torch.ones(nbytes // 4, dtype=torch.float32, device="cuda")
        torch.cuda.synchronize()
        s = float(t[::4096].sum())
        del t
        return s

    rep = learner.call("peak_memory_during", fn, device="cuda")
    delta = as_float(get_field(rep, "delta_bytes", "MemoryReport"), "delta_bytes")
    err = abs(delta / nbytes - 1) * 100
    grade.record(err, message=f"yours {delta / 2**20:.1f} MiB for a CUDA allocation of {nbytes / 2**20:.0f} MiB",
                 details={"allocated_bytes": nbytes, "your_delta_bytes": delta})
