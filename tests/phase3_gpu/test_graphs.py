"""Task 3.6: a CUDA graph of a model's forward answers like the model, for every new input, and refuses
what it cannot replay. The CPU tests check the clear errors; the rest need an NVIDIA GPU."""
from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from tinymodels import TinyCNN, seeded
from .impl import p3g

pytestmark = pytest.mark.phase3_task6

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU")
SHAPE = (2, 3, 16, 16)   # the captured input: batch 2 of 3x16x16


def test_a_cpu_example_is_refused_with_a_clear_error():
    model = seeded(TinyCNN)
    with pytest.raises(ValueError, match="CUDA graphs need a GPU"):
        p3g.GraphedModel(model, torch.randn(*SHAPE))


@pytest.fixture
def full_fp32():
    """Full float32 matmuls and convolutions on the GPU (TF32 off), restored afterwards."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@pytest.fixture
def graphed(full_fp32):
    """A TinyCNN on the GPU and its GraphedModel, captured at SHAPE."""
    model = seeded(TinyCNN).cuda()
    return model, p3g.GraphedModel(model, torch.randn(*SHAPE, device="cuda"))


def eager(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return model(x)


@pytest.mark.gpu
@needs_cuda
def test_a_cpu_model_is_refused_with_a_clear_error():
    with pytest.raises(ValueError, match="CUDA graphs need a GPU"):
        p3g.GraphedModel(seeded(TinyCNN), torch.randn(*SHAPE, device="cuda"))


@pytest.mark.gpu
@needs_cuda
def test_the_graph_answers_like_the_model(graphed):
    model, g = graphed
    x = torch.randn(*SHAPE, device="cuda")
    y = g(x)
    assert y.shape == (SHAPE[0], 10) and y.is_cuda
    torch.testing.assert_close(y, eager(model, x), atol=1e-4, rtol=1e-4)


@pytest.mark.gpu
@needs_cuda
def test_a_new_input_gives_a_new_right_answer(graphed):
    model, g = graphed
    x1, x2 = torch.randn(*SHAPE, device="cuda"), torch.randn(*SHAPE, device="cuda")
    y1, y2 = g(x1), g(x2)
    assert not torch.allclose(y1, y2), "two different inputs gave the same answer: is x copied into static_input?"
    torch.testing.assert_close(y2, eager(model, x2), atol=1e-4, rtol=1e-4)


@pytest.mark.gpu
@needs_cuda
def test_a_returned_tensor_survives_the_next_call(graphed):
    model, g = graphed
    x1 = torch.randn(*SHAPE, device="cuda")
    y1 = g(x1)
    kept = y1.clone()
    g(torch.randn(*SHAPE, device="cuda"))
    torch.cuda.synchronize()
    torch.testing.assert_close(y1, kept, msg="the next call changed an earlier answer: return static_output.clone()")
    torch.testing.assert_close(y1, eager(model, x1), atol=1e-4, rtol=1e-4)


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("shape, dtype", [((SHAPE[0] + 1, *SHAPE[1:]), torch.float32), (SHAPE, torch.float64)])
def test_another_shape_or_dtype_is_refused(graphed, shape, dtype):
    _, g = graphed
    with pytest.raises(ValueError) as err:
        g(torch.randn(*shape, device="cuda", dtype=dtype))
    message = str(err.value)
    captured = r",\s*".join(str(n) for n in SHAPE)    # (2, 3, 16, 16), [2, 3, 16, 16] or torch.Size([...])
    assert re.search(captured, message) and "float32" in message, \
        f"the message should name the captured shape {SHAPE} and dtype float32: {message}"
