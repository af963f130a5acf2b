"""Task 1.5: the profile ranks operators by self time."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from .impl import p1

pytestmark = pytest.mark.phase1_task5


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(256, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(),
                         nn.Linear(1024, 10)).eval()


def test_matmul_heavy_model_is_dominated_by_addmm():
    ops = p1.top_operators(_mlp(), torch.randn(64, 256), k=5, warmup=1, iterations=3)
    assert ops[0].name == "aten::addmm"          # Linear with a bias on a 2-D input
    assert ops[0].calls == 3 * 3                 # three Linear layers, three profiled passes
    assert 1 <= len(ops) <= 5
    times = [op.self_time_ms for op in ops]
    assert times == sorted(times, reverse=True) and all(t > 0 for t in times)


def test_k_limits_the_rows(tiny_cnn):
    ops = p1.top_operators(tiny_cnn, torch.randn(2, 3, 32, 32), k=2, warmup=0, iterations=1)
    assert len(ops) == 2
    assert all(isinstance(op, p1.OpStat) and op.name.startswith("aten::") for op in ops)


@pytest.mark.parametrize("kwargs", [{"k": 0}, {"iterations": 0}, {"warmup": -1}])
def test_bad_counts_are_a_value_error(tiny_cnn, kwargs):
    with pytest.raises(ValueError):
        p1.top_operators(tiny_cnn, torch.randn(1, 3, 32, 32), **kwargs)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU")
def test_cuda_profile_ranks_operators_by_gpu_time():
    ops = p1.top_operators(_mlp(), torch.randn(256, 256), k=5, warmup=2, iterations=3, device="cuda")
    assert ops[0].name in ("aten::addmm", "aten::mm")
    assert all(op.name.startswith("aten::") for op in ops)     # operators, not kernel names
