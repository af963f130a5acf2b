"""Task 3.7: a forward's peak memory, measured exactly, fitted as a line, inverted under a budget; a runner
that survives out-of-memory; a lean server that answers like the model without an autograd graph.

The models are stacks of ``Linear`` layers whose activations can be counted by hand: under inference mode,
``Linear(64, 256) -> ReLU -> Linear(256, 128)`` peaks while the first layer's output and the ReLU's output
(256 floats each per sample) are both alive, so at 2 x 256 x 4 = 2048 bytes per sample. The last tests
need an NVIDIA GPU and are skipped without one."""
from __future__ import annotations

import threading
from typing import Any, Callable

import pytest
import torch
from torch import nn

from tinymodels import TinyCNN, seeded
from .impl import p3g

pytestmark = pytest.mark.phase3_task7

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU")
PER_SAMPLE = 2 * 256 * 4   # bytes at the peak of one sample through mlp(): two [256] float32 activations


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 128)).eval()


def close(got: float, want: float, share: float = 0.03) -> bool:
    return abs(got - want) <= share * want


def within(fn: Callable[[], Any], timeout_s: float = 10.0) -> tuple[Any, BaseException | None]:
    """``fn()`` on a helper thread: (value, None) or (None, its exception); fails the test if it hangs."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - handed back to the test
            box["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout_s)
    assert not t.is_alive(), f"did not return within {timeout_s} s (an endless retry loop?)"
    return box.get("value"), box.get("error")


# -- measure_peak_bytes ------------------------------------------------------------------------------

def test_measured_peak_is_the_activations_and_the_same_every_run():
    model = mlp()
    runs = [p3g.measure_peak_bytes(model, torch.randn(8, 64)) for _ in range(3)]
    assert isinstance(runs[0], int)
    assert runs[0] == runs[1] == runs[2], f"three measurements of the same forward differ: {runs}"
    assert close(runs[0], 8 * PER_SAMPLE), f"peak {runs[0]} bytes, expected about {8 * PER_SAMPLE} (2 x 256 floats x 8)"


def test_measured_peak_grows_with_the_batch():
    model = mlp()
    small, large = (p3g.measure_peak_bytes(model, torch.randn(b, 64)) for b in (2, 16))
    assert large > small > 0
    assert close(large / small, 8, 0.05), f"peak at 16 / peak at 2 is {large / small:.2f}, expected 8"


def test_weights_and_input_are_not_counted():
    big = nn.Linear(2048, 2048).eval()           # 16 MB of weights
    x = torch.randn(1, 2048)
    peak = p3g.measure_peak_bytes(big, x)
    assert peak < 64 * 1024, f"peak {peak} bytes for a [1, 2048] output: the weights (16 MB) must not be counted"


def test_the_forward_runs_without_autograd():
    model = mlp()   # its parameters require grad: a plain forward would keep every activation
    assert close(p3g.measure_peak_bytes(model, torch.randn(32, 64)), 32 * PER_SAMPLE), \
        "measure under torch.inference_mode(): with autograd on, saved activations inflate the peak"


# -- fit_memory_model ---------------------------------------------------------------------------------

def test_fit_on_known_sizes_predicts_larger_batches():
    model = mlp()
    fitted = p3g.fit_memory_model(model, (64,), batch_sizes=(2, 8))
    assert isinstance(fitted, p3g.MemoryModel)
    assert fitted.batch_sizes == (2, 8)
    assert len(fitted.measured_bytes) == 2 and fitted.measured_bytes[1] > fitted.measured_bytes[0]
    assert close(fitted.bytes_per_sample, PER_SAMPLE), f"slope {fitted.bytes_per_sample}, expected {PER_SAMPLE}"
    for b in (24, 64):
        assert close(fitted.predict(b), b * PER_SAMPLE), f"predict({b}) = {fitted.predict(b)}, expected {b * PER_SAMPLE}"
    truth = p3g.measure_peak_bytes(model, torch.randn(40, 64))
    assert close(fitted.predict(40), truth)


def test_fit_is_the_least_squares_line_through_several_points():
    fitted = p3g.fit_memory_model(mlp(), (64,), batch_sizes=(1, 4, 16))
    assert fitted.batch_sizes == (1, 4, 16) and len(fitted.measured_bytes) == 3
    assert close(fitted.bytes_per_sample, PER_SAMPLE)


@pytest.mark.parametrize("sizes", [(4,), (4, 4), (0, 8)])
def test_fit_refuses_too_few_or_bad_batch_sizes(sizes):
    with pytest.raises(ValueError):
        p3g.fit_memory_model(mlp(), (64,), batch_sizes=sizes)


# -- largest_batch_under_budget ----------------------------------------------------------------------

def test_largest_batch_on_a_known_budget():
    assert p3g.largest_batch_under_budget(mlp(), (64,), 20 * PER_SAMPLE + 100) == 20
    assert p3g.largest_batch_under_budget(mlp(), (64,), 37 * PER_SAMPLE) == 37


def test_a_budget_below_batch_one_gives_zero():
    assert p3g.largest_batch_under_budget(mlp(), (64,), PER_SAMPLE // 2) == 0


def test_the_limit_caps_the_answer():
    assert p3g.largest_batch_under_budget(mlp(), (64,), 10**9, limit=16) == 16


# -- OomSafeRunner -------------------------------------------------------------------------------------

class Flaky:
    """``x -> 2x + 1`` row by row; a chunk of more than ``limit`` rows raises ``torch.OutOfMemoryError``."""

    def __init__(self, limit: int):
        self.limit, self.sizes, self.error = limit, [], None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.sizes.append(len(x))
        if len(x) > self.limit:
            raise torch.OutOfMemoryError(f"fake: {len(x)} rows > {self.limit}")
        if bool((x[:, 0] == 999.0).any()):
            self.error = ValueError("fake: a bad row")
            raise self.error
        return 2 * x + 1


def test_runner_chunks_halves_and_answers_every_row_in_order():
    fake = Flaky(limit=5)
    runner = p3g.OomSafeRunner(fake, 16)
    x = torch.randn(23, 3)
    y, err = within(lambda: runner(x))
    assert err is None, f"raised {err!r}"
    torch.testing.assert_close(y, 2 * x + 1)
    assert fake.sizes[:3] == [16, 8, 4], f"chunk sizes tried: {fake.sizes} (halve after each out-of-memory)"
    assert max(fake.sizes[3:]) <= 4
    assert runner.max_batch == 4 and runner.oom_events == 2


def test_runner_keeps_the_size_that_worked_for_the_next_call():
    fake = Flaky(limit=5)
    runner = p3g.OomSafeRunner(fake, 16)
    within(lambda: runner(torch.randn(10, 3)))
    before = runner.oom_events
    x = torch.randn(30, 3)
    y, err = within(lambda: runner(x))
    assert err is None
    torch.testing.assert_close(y, 2 * x + 1)
    assert runner.oom_events == before, "the next call ran out of memory again: keep the max_batch that worked"


def test_runner_lets_other_errors_through_unchanged():
    fake = Flaky(limit=100)
    runner = p3g.OomSafeRunner(fake, 8)
    x = torch.randn(20, 3)
    x[13, 0] = 999.0
    _, err = within(lambda: runner(x))
    assert err is fake.error, f"expected the model's own ValueError, got {err!r}"
    assert runner.max_batch == 8 and runner.oom_events == 0


def test_runner_gives_up_when_not_even_one_row_fits():
    fake = Flaky(limit=0)
    runner = p3g.OomSafeRunner(fake, 8)
    _, err = within(lambda: runner(torch.randn(20, 3)))
    assert isinstance(err, Exception), "a model that runs out of memory on one row must end in an error"
    assert fake.sizes == [8, 4, 2, 1], f"chunk sizes tried: {fake.sizes}, expected halving down to one row, then an error"
    assert runner.max_batch >= 1


def test_runner_refuses_bad_input_and_bad_settings():
    with pytest.raises(ValueError):
        p3g.OomSafeRunner(Flaky(4), 0)
    runner = p3g.OomSafeRunner(Flaky(4), 4)
    with pytest.raises(ValueError):
        runner(torch.randn(0, 3))
    with pytest.raises(ValueError):
        runner([1.0, 2.0])


# -- lean_forward -------------------------------------------------------------------------------------

def test_lean_forward_answers_like_the_model_without_a_graph():
    model = seeded(TinyCNN)
    serve = p3g.lean_forward(model, device="cpu")
    x = torch.randn(6, 3, 16, 16)
    y = serve(x)
    with torch.inference_mode():
        want = model(x)
    torch.testing.assert_close(y, want, atol=1e-5, rtol=0)
    assert y.dtype == torch.float32
    assert not y.requires_grad, "the lean server's output carries an autograd graph: run under torch.inference_mode()"
    assert all(p.dtype == torch.float32 for p in model.parameters()), "lean_forward must not convert the model itself"


def test_lean_forward_needs_less_than_a_plain_forward():
    model = mlp()
    serve = p3g.lean_forward(model, device="cpu")
    x = torch.randn(16, 64)
    y = serve(x)
    assert y.grad_fn is None
    # measure_peak_bytes runs its callable under inference_mode: the lean server must fit the same peak.
    assert close(p3g.measure_peak_bytes(serve, x), 16 * PER_SAMPLE)


# -- on an NVIDIA GPU ------------------------------------------------------------------------------------

@pytest.mark.gpu
@needs_cuda
def test_cuda_measure_and_fit_on_known_sizes():
    model = mlp().cuda()
    peak = p3g.measure_peak_bytes(model, torch.randn(32, 64, device="cuda"))
    assert close(peak, 32 * PER_SAMPLE, 0.05), f"CUDA peak {peak}, expected about {32 * PER_SAMPLE}"
    fitted = p3g.fit_memory_model(model, (64,), device="cuda", batch_sizes=(8, 32))
    truth = p3g.measure_peak_bytes(model, torch.randn(128, 64, device="cuda"))
    assert close(fitted.predict(128), truth, 0.05)


@pytest.mark.gpu
@needs_cuda
def test_cuda_lean_forward_answers_in_float32_within_half_precision():
    model = seeded(TinyCNN).cuda()
    serve = p3g.lean_forward(model, device="cuda")
    x = torch.randn(16, 3, 32, 32, device="cuda")
    y = serve(x)
    with torch.inference_mode():
        want = model(x)
    assert y.dtype == torch.float32 and y.device.type == "cuda" and not y.requires_grad
    assert bool(((y - want).abs() <= 0.02 * (1 + want.abs())).all())
    assert next(model.parameters()).dtype == torch.float32, "lean_forward must convert a copy, not the model"
