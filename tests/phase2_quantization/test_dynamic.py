"""Task 2.3: INT8 Linear layers by hand, and PyTorch's dynamic INT8."""
from __future__ import annotations

import io

import pytest
import torch
from torch import nn

from .impl import q

pytestmark = pytest.mark.phase2_task3


def _bytes(m: nn.Module) -> int:
    buf = io.BytesIO()
    torch.save(m.state_dict(), buf)
    return buf.getbuffer().nbytes


def _sqnr(a, b):
    return float(10 * torch.log10((a.double() ** 2).sum() / ((a - b).double() ** 2).sum()))


def test_weight_only_layer_stores_int8():
    torch.manual_seed(0)
    lin = nn.Linear(64, 32)
    layer = q.Int8WeightOnlyLinear.from_float(lin)
    assert layer.weight_int8.dtype == torch.int8 and layer.weight_int8.shape == (32, 64)
    assert layer.weight_scale.shape == (32,)
    x = torch.randn(5, 64)
    assert _sqnr(lin(x).detach(), layer(x)) > 38


@pytest.mark.parametrize("mode", ["dynamic", "weight_only"])
def test_quantize_linears_replaces_every_linear(mlp, mode):
    qm = q.quantize_linears(mlp, mode=mode)
    assert not [m for m in qm.modules() if type(m) is nn.Linear]
    assert any(type(m) is nn.Linear for m in mlp.modules())           # the original is untouched
    assert _bytes(qm) <= 0.3 * _bytes(mlp)
    x = torch.randn(8, 64)
    with torch.inference_mode():
        assert _sqnr(mlp(x), qm(x)) > 28


def test_dynamic_layer_matches_integer_arithmetic():
    torch.manual_seed(1)
    lin = nn.Linear(48, 16)
    layer = q.Int8DynamicLinear.from_float(lin)
    x = torch.randn(3, 48)
    s_x = x.abs().max() / 127.5
    q_x = torch.clamp(torch.round(x / s_x), -128, 127)
    want = (q_x @ layer.weight_int8.float().t()) * (s_x * layer.weight_scale) + lin.bias.detach()
    torch.testing.assert_close(layer(x), want, rtol=1e-5, atol=1e-5)


def test_int_matmul_is_exact():
    a = torch.randint(-128, 128, (4, 300), dtype=torch.int8)
    b = torch.randint(-128, 128, (300, 8), dtype=torch.int8)
    assert torch.equal(q.int_matmul(a, b), a.to(torch.int32) @ b.to(torch.int32))


def test_unknown_mode_is_a_value_error(mlp):
    with pytest.raises(ValueError):
        q.quantize_linears(mlp, mode="int4")


def test_pytorch_dynamic_int8_is_really_quantized(mlp):
    qm = q.torch_dynamic_int8(mlp)
    names = {type(m).__module__ for m in qm.modules()}
    assert any(n.startswith("torch.ao.nn.quantized.dynamic") for n in names)
    x = torch.randn(4, 64)
    with torch.inference_mode():
        assert _sqnr(mlp(x), qm(x)) > 25
