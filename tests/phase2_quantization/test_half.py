"""Task 2.5: half precision: honest support answers, BF16 / FP16 conversion, float32 at the edges."""
from __future__ import annotations

import importlib

import pytest
import torch

from .impl import IMPL, q

pytestmark = pytest.mark.phase2_task5
half_module = importlib.import_module(f"phase2_optimization.quantization.{IMPL}.half")


@pytest.mark.parametrize("flags, dtype, supported", [
    ({"avx2", "avx512_bf16"}, torch.bfloat16, True),
    ({"avx2", "amx_bf16"}, torch.bfloat16, True),
    ({"avx2", "fma"}, torch.bfloat16, False),
    ({"avx2", "avx512_bf16"}, torch.float16, False),
    ({"avx512_fp16"}, torch.float16, True),
])
def test_cpu_support_follows_the_isa_flags(monkeypatch, flags, dtype, supported):
    monkeypatch.setattr(half_module, "cpu_flags", lambda: set(flags))
    monkeypatch.setattr(half_module.platform, "machine", lambda: "x86_64")
    s = q.precision_support("cpu", dtype)
    assert s.supported is supported and s.reason
    assert s.dtype == ("bfloat16" if dtype == torch.bfloat16 else "float16")


def test_unsupported_cpu_refuses_unless_emulation_is_allowed(monkeypatch, tiny_cnn):
    monkeypatch.setattr(half_module, "cpu_flags", lambda: {"avx2"})
    monkeypatch.setattr(half_module.platform, "machine", lambda: "x86_64")
    with pytest.raises(q.PrecisionNotSupported, match="no native bfloat16"):
        q.to_half_precision(tiny_cnn, torch.bfloat16, "cpu")
    model = q.to_half_precision(tiny_cnn, torch.bfloat16, "cpu", allow_emulated=True)
    out = model(torch.randn(2, 3, 32, 32))
    assert out.dtype == torch.float32 and out.shape == (2, 10)
    assert all(p.dtype == torch.bfloat16 for p in model.parameters())
    assert all(p.dtype == torch.float32 for p in tiny_cnn.parameters())   # the original is untouched


def test_cuda_answers_without_a_gpu_say_why():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    s = q.precision_support("cuda", torch.float16)
    assert not s.supported and "GPU" in s.reason


@pytest.mark.parametrize("bad", [("cpu", torch.float32), ("tpu", torch.float16)])
def test_bad_arguments(bad):
    with pytest.raises(ValueError):
        q.precision_support(*bad)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU")
def test_fp16_on_the_gpu(tiny_cnn):
    model = q.to_half_precision(tiny_cnn, torch.float16, "cuda")
    x = torch.randn(4, 3, 32, 32)
    out = model(x)
    assert out.dtype == torch.float32 and out.device.type == "cuda"
    with torch.inference_mode():
        ref = tiny_cnn(x)
    assert float(10 * torch.log10((ref ** 2).sum() / ((ref - out.cpu()) ** 2).sum())) > 30
