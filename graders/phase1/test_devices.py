"""Task 1.6: CPU versus GPU rows, each honest about what it measured or why it could not."""
from __future__ import annotations

import torch

from ..checks import as_float, expect, get_field
from ..harness import cuda_sync, summarize, threads
from ..plugin import criterion
from .workloads import small_model


def _rows(learner, build, make_input):
    rows = learner.call("compare_devices", build, make_input, batch_size=1, warmup=5, iterations=40)
    expect(isinstance(rows, (list, tuple)), f"compare_devices should return a list of DeviceResult, got {type(rows).__name__}")
    devs = [str(get_field(r, "device", "DeviceResult")) for r in rows]
    expect(devs == ["cpu", "cuda"], f"compare_devices should return rows for ('cpu', 'cuda') in that order, got {devs}")
    return {d: r for d, r in zip(devs, rows)}


def _grader_p50(device: str, timer) -> list[float]:
    torch.manual_seed(0)
    model = small_model().to(device)
    x = torch.randn(1, 3, 64, 64, device=device)

    def call():
        with torch.inference_mode():
            model(x)

    sync = cuda_sync if device == "cuda" else None
    return [timer.time(call, repeats=40, warmup=5, sync=sync).median_ms for _ in range(2)]


def _build():
    torch.manual_seed(0)
    return small_model()


def _make_input(bs: int) -> torch.Tensor:
    return torch.randn(bs, 3, 64, 64)


@criterion("p1.device_rows")
def test_device_rows(grade, learner, timer):
    with threads(1):  # one thread on both sides: steadier on shared and many-core machines alike
        before = _grader_p50("cpu", timer)
        rows = _rows(learner, _build, _make_input)
        after = _grader_p50("cpu", timer)
    cpu, cuda = rows["cpu"], rows["cuda"]
    expect(bool(get_field(cpu, "available", "DeviceResult")), "the cpu row must be available")
    p50 = as_float(get_field(cpu, "p50_ms", "cpu row"), "cpu p50_ms")
    if torch.cuda.is_available():
        expect(bool(get_field(cuda, "available", "cuda row")), "a GPU is present: the cuda row must be measured")
    else:
        expect(not bool(get_field(cuda, "available", "cuda row")), "no GPU here: the cuda row must say available=False")
        expect(get_field(cuda, "p50_ms", "cuda row") is None, "no GPU here: the cuda row's p50_ms must be None, not a number")
        reason = str(get_field(cuda, "reason", "cuda row") or "")
        expect(len(reason.strip()) >= 5, "the cuda row must give a reason why it was skipped")
    ref = summarize(before + after)
    err = abs(p50 / ref.median - 1) * 100
    grade.record(err, noisy=ref.spread > 0.10,
                 interval=(max(0.0, err - 100 * ref.spread), err + 100 * ref.spread),
                 message=f"cpu p50: yours {p50:.3f} ms, grader {ref.median:.3f} ms",
                 details={"your_cpu_p50_ms": p50, "grader_cpu_p50_ms": ref.samples})


@criterion("p1.cuda_latency")
def test_cuda_latency(grade, learner, timer):
    before = _grader_p50("cuda", timer)
    rows = _rows(learner, _build, _make_input)
    after = _grader_p50("cuda", timer)
    p50 = as_float(get_field(rows["cuda"], "p50_ms", "cuda row"), "cuda p50_ms")
    ref = summarize(before + after)
    err = abs(p50 / ref.median - 1) * 100
    grade.record(err, noisy=ref.spread > 0.10,
                 interval=(max(0.0, err - 100 * ref.spread), err + 100 * ref.spread),
                 message=f"cuda p50: yours {p50:.3f} ms, grader {ref.median:.3f} ms (synchronised)",
                 details={"your_cuda_p50_ms": p50, "grader_cuda_p50_ms": ref.samples})
