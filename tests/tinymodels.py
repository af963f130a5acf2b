"""The tiny CNNs the unit tests of several parts share: small enough that a whole folder runs in about a
minute on two CPU cores, with every layer that ``eval()``, BatchNorm folding or export cares about."""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

__all__ = ["TinyCNN", "seeded"]


class TinyCNN(nn.Module):
    """conv-BN-ReLU twice, global average pool, dropout, linear: ``[B, 3, H, W] -> [B, num_classes]``.

    ``first_conv_bias=False`` gives the first conv no bias (the case BatchNorm folding must create one for).
    """

    def __init__(self, num_classes: int = 10, *, first_conv_bias: bool = True) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1, bias=first_conv_bias), nn.BatchNorm2d(8), nn.ReLU(),
            nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.dropout = nn.Dropout(0.5)
        self.head = nn.Linear(16, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:   # [B, 3, H, W] -> [B, num_classes]
        return self.head(self.dropout(self.features(x)))


def seeded(build: Callable[[], nn.Module], seed: int = 0, *, mean: float = 0.5, var: tuple[float, float] = (0.5, 2.0),
           affine: bool = False) -> nn.Module:
    """``build()`` under ``torch.manual_seed(seed)``, in eval mode, with non-trivial BatchNorm statistics:
    running means uniform in [-mean, mean], variances in ``var``; with ``affine``, BN weights in
    [0.5, 1.5] and biases in [-0.2, 0.2] as well."""
    torch.manual_seed(seed)
    model = build()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-mean, mean)
                m.running_var.uniform_(*var)
                if affine:
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.uniform_(-0.2, 0.2)
    return model.eval()
