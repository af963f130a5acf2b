"""Task 2.12: magnitude pruning: exact counts, the smallest magnitudes, permanent, honest reports."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from .impl import c

pytestmark = pytest.mark.phase2_task12


def _model() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Sequential(nn.Linear(8, 16)), nn.Linear(16, 4))
    with torch.no_grad():
        model[2][0].weight.add_(10.0 * torch.sign(model[2][0].weight))    # one layer far larger than the others
    return model


def _zeros(m: nn.Module) -> int:
    return int((m.weight == 0).sum())


def test_global_pruning_zeroes_the_smallest_magnitudes_over_all_layers():
    model = _model()
    pruned = c.magnitude_prune(model, 0.5, scope="global")
    layers = [m for m in pruned.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    total = sum(m.weight.numel() for m in layers)
    assert sum(_zeros(m) for m in layers) == round(0.5 * total)
    assert _zeros(pruned[2][0]) == 0          # the large layer keeps everything: one threshold for all
    assert _zeros(model[0]) == 0              # the original is untouched


def test_per_layer_pruning_gives_every_layer_the_same_fraction():
    pruned = c.magnitude_prune(_model(), 0.25, scope="layer")
    for m in pruned.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            assert _zeros(m) == round(0.25 * m.weight.numel())


def test_pruning_is_permanent_and_keeps_the_other_weights():
    model = _model()
    pruned = c.magnitude_prune(model, 0.6)
    assert not [k for k in pruned.state_dict() if k.endswith(("_orig", "_mask"))]
    assert not any(m._forward_pre_hooks for m in pruned.modules())
    for a, b in zip(model.modules(), pruned.modules()):
        if isinstance(a, (nn.Conv2d, nn.Linear)):
            kept = b.weight != 0
            assert torch.equal(a.weight[kept], b.weight[kept]) and torch.equal(a.bias, b.bias)


@pytest.mark.parametrize("amount, scope", [(-0.1, "global"), (1.5, "layer"), (0.5, "everything")])
def test_bad_arguments_are_refused(amount, scope):
    with pytest.raises(ValueError):
        c.magnitude_prune(_model(), amount, scope=scope)


def test_sparsity_report_counts_every_prunable_weight_by_name():
    pruned = c.magnitude_prune(_model(), 0.5, scope="layer")
    report = c.sparsity_report(pruned)
    assert [layer.name for layer in report.layers] == ["0", "2.0", "3"]
    assert report.zeros == sum(_zeros(m) for m in pruned.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))
    assert report.sparsity == pytest.approx(report.zeros / report.total)
    assert c.sparsity_report(_model()).sparsity == 0.0


def test_sparsity_curve_measures_each_amount_with_the_callback():
    calls = []

    def evaluate(model):
        calls.append(model.training)
        return 0.5

    points = c.sparsity_curve(_model(), [0.0, 0.5, 0.9], evaluate)
    assert [p.amount for p in points] == [0.0, 0.5, 0.9]
    assert [round(p.sparsity, 2) for p in points] == [0.0, 0.5, 0.9]
    assert [p.accuracy for p in points] == [0.5, 0.5, 0.5] and calls == [False, False, False]
