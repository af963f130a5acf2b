"""Task 2.14: the 2:4 pattern on any machine; the sparse kernels on an NVIDIA GPU only."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from .impl import c

pytestmark = pytest.mark.phase2_task14


def test_two_four_mask_keeps_the_two_largest_of_every_four():
    w = torch.tensor([[0.1, -3.0, 2.0, 0.0, 5.0, 4.0, -6.0, 1.0]])
    assert c.two_four_mask(w).tolist() == [[False, True, True, False, True, False, True, False]]
    big = torch.randn(64, 128)
    mask = c.two_four_mask(big)
    assert mask.dtype == torch.bool and (mask.reshape(-1, 4).sum(1) == 2).all()


@pytest.mark.parametrize("shape", [(8,), (4, 6)])
def test_two_four_mask_refuses_shapes_without_groups_of_four(shape):
    with pytest.raises(ValueError):
        c.two_four_mask(torch.randn(shape))


def test_apply_two_four_prunes_eligible_linears_only():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    pruned = c.apply_two_four(model)
    assert float((pruned[0].weight == 0).float().mean()) == 0.5
    assert torch.equal(pruned[2].weight, model[2].weight)          # 10 rows: not a multiple of 32
    assert float((model[0].weight == 0).float().mean()) == 0.0     # the original is untouched


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without a GPU")
def test_to_semi_structured_refuses_without_a_gpu_and_says_why():
    ok, reason = c.semi_structured_support("cuda")
    assert not ok and "GPU" in reason
    with pytest.raises(c.SemiStructuredNotSupported, match="GPU"):
        c.to_semi_structured(nn.Sequential(nn.Linear(64, 64)))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available() or torch.cuda.get_device_capability()[0] < 8,
                    reason="2:4 sparse kernels need an NVIDIA GPU of compute capability 8.0+")
def test_semi_structured_model_matches_the_dense_pruned_one():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(256, 512), nn.ReLU(), nn.Linear(512, 256)).eval()
    sparse = c.to_semi_structured(model)
    dense = c.apply_two_four(model).cuda().half()
    x = torch.randn(128, 256, device="cuda", dtype=torch.float16)
    with torch.inference_mode():
        torch.testing.assert_close(sparse(x), dense(x), atol=2e-2, rtol=2e-2)
