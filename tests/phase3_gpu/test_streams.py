"""Task 3.9: several models on their own CUDA streams give each model's own answer, and the report adds up.
The CPU tests check the clear errors; the rest need an NVIDIA GPU."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from tinymodels import TinyCNN, seeded
from .impl import p3g

pytestmark = pytest.mark.phase3_task9

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU")


def test_a_cpu_device_is_refused_with_a_clear_error():
    models = [nn.Linear(4, 2), nn.Linear(4, 3)]
    with pytest.raises(ValueError, match="CUDA"):
        p3g.run_on_streams(models, [torch.randn(2, 4), torch.randn(2, 4)], device="cpu")


def test_one_input_per_model_is_required():
    models = [nn.Linear(4, 2), nn.Linear(4, 3)]
    with pytest.raises(ValueError, match="one input per model"):
        p3g.run_on_streams(models, [torch.randn(2, 4)])


class Spy(nn.Module):
    """A model that notes the CUDA stream each forward runs on."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner, self.streams = inner, set()

    def forward(self, x):
        self.streams.add(torch.cuda.current_stream(x.device).cuda_stream)
        return self.inner(x)


def four_models():
    """Four different models and an input batch for each."""
    torch.manual_seed(0)
    models = [seeded(TinyCNN), seeded(lambda: TinyCNN(num_classes=5), seed=1),
              nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 7)).eval(),
              nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten()).eval()]
    inputs = [torch.randn(4, 3, 16, 16), torch.randn(2, 3, 24, 24), torch.randn(8, 64), torch.randn(3, 1, 8, 8)]
    return [Spy(m.cuda()) for m in models], inputs


@pytest.fixture
def full_fp32():
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@pytest.mark.gpu
@needs_cuda
def test_every_model_gives_its_own_answer_on_its_own_stream(full_fp32):
    models, inputs = four_models()
    xs = [x.cuda() for x in inputs]
    report = p3g.run_on_streams(models, xs, repeats=3, warmup=1)
    assert len(report.outputs) == 4
    for model, x, y in zip(models, xs, report.outputs):
        assert y.device.type == "cpu" and y.dtype == torch.float32
        with torch.inference_mode():
            want = model(x).float().cpu()
        torch.testing.assert_close(y, want, atol=1e-4, rtol=1e-4)
    seen = set().union(*(m.streams for m in models))
    assert len(seen) >= 4, f"the four models ran on {len(seen)} stream(s): give each its own torch.cuda.Stream"


@pytest.mark.gpu
@needs_cuda
def test_the_report_adds_up(full_fp32):
    models, inputs = four_models()
    report = p3g.run_on_streams(models, inputs, repeats=2, warmup=0)   # CPU inputs are moved to the GPU
    assert report.streams == 4
    assert report.concurrent_ms > 0 and report.sequential_ms > 0
    assert report.speedup == pytest.approx(report.sequential_ms / report.concurrent_ms, rel=1e-6)
