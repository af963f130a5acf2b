"""Task 2.13: channel pruning: a smaller ResNet equal to the original minus channels, counted right, trainable."""
from __future__ import annotations

import pytest
import torch
from torch import nn
from torchvision.models import resnet18, resnet50

from .impl import c

pytestmark = pytest.mark.phase2_task13


@pytest.fixture(scope="module")
def resnet() -> nn.Module:
    torch.manual_seed(0)
    model = resnet18(num_classes=10).eval()
    with torch.no_grad():   # BN statistics that are not the identity, so that indices matter
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return model


def test_channel_importance_is_the_l1_norm_of_each_filter():
    conv = nn.Conv2d(2, 3, 1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([1.0, -2.0, 0.5, 0.0, -3.0, 3.0]).reshape(3, 2, 1, 1))
    assert c.channel_importance(conv).tolist() == [3.0, 0.5, 6.0]


def test_prune_channels_cuts_the_conv_its_batchnorm_and_the_next_conv_at_the_same_indices():
    torch.manual_seed(1)
    conv, bn, nxt = nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.Conv2d(6, 4, 3, padding=1)
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1), bn.running_var.uniform_(0.5, 2), bn.weight.uniform_(0.5, 2)
    keep = torch.tensor([0, 2, 5])
    a, b, n = c.prune_channels(conv.eval(), bn.eval(), nxt.eval(), keep)
    assert (a.out_channels, b.num_features, n.in_channels) == (3, 3, 3)
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        silenced = bn.weight.clone(), bn.bias.clone()
        drop = torch.tensor([1, 3, 4])
        bn.weight[drop] = 0.0
        bn.bias[drop] = 0.0
        want = nxt(torch.relu(bn(conv(x))))
        bn.weight.copy_(silenced[0]), bn.bias.copy_(silenced[1])
        got = n(torch.relu(b(a(x))))
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    assert conv.out_channels == 6 and nxt.in_channels == 6      # the inputs are left unchanged


def test_grouped_convolutions_are_refused():
    with pytest.raises(ValueError):
        c.prune_channels(nn.Conv2d(4, 4, 3, groups=2), nn.BatchNorm2d(4), nn.Conv2d(4, 4, 3), torch.tensor([0, 1]))


def test_pruned_resnet_is_smaller_and_counted_exactly(resnet):
    x = torch.randn(1, 3, 32, 32)
    before = c.count_cost(resnet, x)
    pruned = c.prune_resnet_channels(resnet, 0.5)
    after = c.count_cost(pruned, x)
    assert after.params == sum(p.numel() for p in pruned.parameters()) < before.params
    assert after.flops < 0.6 * before.flops
    assert pruned.layer1[0].conv1.out_channels == 32 and pruned.layer1[0].conv2.out_channels == 64
    assert resnet.layer1[0].conv1.out_channels == 64                     # the original is untouched
    assert pruned(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_zeroed_weights_still_cost_flops(resnet):
    x = torch.randn(1, 3, 32, 32)
    zeroed = c.magnitude_prune(resnet, 0.5)
    assert c.count_cost(zeroed, x) == c.count_cost(resnet, x)


def test_bottleneck_blocks_are_pruned_twice():
    model = c.prune_resnet_channels(resnet50(num_classes=10).eval(), 0.25)
    block = model.layer1[0]
    assert (block.conv1.out_channels, block.conv2.out_channels, block.conv3.out_channels) == (16, 16, 256)
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 10)


@pytest.mark.parametrize("ratio", [0.0, 1.5])
def test_bad_keep_ratios_and_models_are_refused(resnet, ratio):
    with pytest.raises(ValueError):
        c.prune_resnet_channels(resnet, ratio)
    with pytest.raises(ValueError, match="ResNet"):
        c.prune_resnet_channels(nn.Sequential(nn.Linear(2, 2)), 0.5)


def test_fine_tune_trains_the_model_deterministically():
    torch.manual_seed(0)
    x, y = torch.randn(64, 3, 16, 16), torch.randint(0, 10, (64,))
    config = c.FineTuneConfig(epochs=2, batch_size=16, lr=1e-2, seed=3)
    runs = []
    for _ in range(2):
        model = c.make_student(4, pool=1)
        start = [p.detach().clone() for p in model.parameters()]
        tuned = c.fine_tune(model, x, y, config)
        assert tuned is model and not tuned.training
        assert any(not torch.equal(a, b) for a, b in zip(start, tuned.parameters()))
        runs.append(torch.cat([p.detach().flatten() for p in tuned.parameters()]))
    assert torch.equal(runs[0], runs[1])


def test_recalibrate_batchnorm_re_estimates_the_statistics_from_the_data():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU())
    with torch.no_grad():
        model[1].running_mean.fill_(5.0)
        model[1].running_var.fill_(9.0)
    weights = [p.detach().clone() for p in model.parameters()]
    x = torch.randn(40, 3, 8, 8) * 2 + 1
    out = c.recalibrate_batchnorm(model, x, batch_size=20)   # equal batches: the average of means is the mean
    assert out is model and not model.training and model[1].momentum == 0.1
    with torch.no_grad():
        act = model[0](x)
    torch.testing.assert_close(model[1].running_mean, act.mean(dim=(0, 2, 3)), atol=1e-4, rtol=1e-4)
    assert all(torch.equal(a, b) for a, b in zip(weights, model.parameters()))
