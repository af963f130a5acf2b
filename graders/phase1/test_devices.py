"""Task 1.6: CPU versus GPU rows, each honest about what it measured or why it could not."""
from __future__ import annotations

import torch

from ..checks import as_float, expect, get_field
from ..harness import cuda_sync, ratio_disagreement, summarize, threads, time_callable
from ..harness.timing import now_ns
from ..plugin import criterion
from .diagnosis import timed_region_hint
from .workloads import small_model


def _rows(learner, build, make_input, iterations: int = 40):
    rows = learner.call("compare_devices", build, make_input, batch_size=1, warmup=5, iterations=iterations)
    expect(isinstance(rows, (list, tuple)), f"compare_devices should return a list of DeviceResult, got {type(rows).__name__}")
    devs = [str(get_field(r, "device", "DeviceResult")) for r in rows]
    expect(devs == ["cpu", "cuda"], f"compare_devices should return rows for ('cpu', 'cuda') in that order, got {devs}")
    return {d: r for d, r in zip(devs, rows)}


def _cpu_p50(rows) -> float:
    """Check both rows' contract (the cuda row honest about this machine); return the cpu p50 (ms)."""
    cpu, cuda = rows["cpu"], rows["cuda"]
    expect(bool(get_field(cpu, "available", "DeviceResult")), "the cpu row must be available")
    if torch.cuda.is_available():
        expect(bool(get_field(cuda, "available", "cuda row")), "a GPU is present: the cuda row must be measured")
    else:
        expect(not bool(get_field(cuda, "available", "cuda row")), "no GPU here: the cuda row must say available=False")
        expect(get_field(cuda, "p50_ms", "cuda row") is None, "no GPU here: the cuda row's p50_ms must be None, not a number")
        reason = str(get_field(cuda, "reason", "cuda row") or "")
        expect(len(reason.strip()) >= 5, "the cuda row must give a reason why it was skipped")
    p50 = as_float(get_field(cpu, "p50_ms", "cpu row"), "cpu p50_ms")
    expect(p50 > 0, f"the cpu row's p50_ms is {p50}; a real model takes time")
    return p50


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


class _WitnessedBuild:
    """``build()`` for the learner: each model it returns is timed, forward by forward, on the grader's clock.

    Forward pre- and post-hooks read the grader's clock around every ``model(x)`` call on the cpu, so
    your cpu row's p50 can be compared with the grader's time of the very calls you timed.
    """

    def __init__(self):
        self.cpu_ms: list[float] = []

    def __call__(self):
        model = _build()
        start: list[int] = []

        def before(module, args):
            start.append(now_ns())

        def after(module, args, output):
            if start and args and isinstance(args[0], torch.Tensor) and args[0].device.type == "cpu":
                self.cpu_ms.append((now_ns() - start.pop()) / 1e6)
            start.clear()

        model.register_forward_pre_hook(before)
        model.register_forward_hook(after)
        return model


@criterion("p1.device_rows")
def test_device_rows(grade, learner):
    """The rows' contract, and your cpu p50 against the grader's clock on the same forward calls, 5 rounds.

    The models your ``compare_devices`` builds are witnessed: the grader times each cpu forward call
    itself (:class:`_WitnessedBuild`), so each round compares your cpu p50 with the median of the grader's
    times of the calls you timed (the last ``iterations``). The figure is the median round; its
    confidence interval is the verdict's interval, and the spread of the grader's per-round p50s is the
    machine's noise in the same windows.
    """
    rounds = 5  # a median of five rounds: two bursts of noise cannot move it
    torch.manual_seed(0)
    model, x = small_model(), _make_input(1)

    def call():
        with torch.inference_mode():
            model(x)

    yours, truth = [], []
    with threads(1):  # one thread: steadier on shared and many-core machines alike
        once = time_callable(call, repeats=10, warmup=3).median_ms
        iters = int(min(600, max(40, 300 / once)))
        for _ in range(rounds):
            build = _WitnessedBuild()
            yours.append(_cpu_p50(_rows(learner, build, _make_input, iterations=iters)))
            expect(len(build.cpu_ms) >= iters, f"compare_devices ran the cpu model {len(build.cpu_ms)} times; "
                                                f"expected warm-up + iterations = {5 + iters}")
            truth.append(summarize(build.cpu_ms[-iters:]).median)
    r, g = summarize([y / t for y, t in zip(yours, truth)]), summarize(truth)
    err, interval = ratio_disagreement(r)
    grade.record(err, noise=g.noise, interval=interval, hint=timed_region_hint(r.median, "model(x)"),
                 message=f"cpu p50: yours {summarize(yours).median:.3f} ms, the grader's clock on the same calls "
                         f"{g.median:.3f} ms",
                 details={"your_cpu_p50_ms": yours, "grader_cpu_p50_ms": truth, "ratios": r.samples,
                          "iterations": iters,
                          "samples": {"your cpu p50 ms": yours, "grader cpu p50 ms": truth}, "samples_unit": "ms"})


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
