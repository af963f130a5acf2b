"""Small models the router tests serve; module-level, so the worker processes can import them by name."""
from __future__ import annotations

import time

import torch
from torch import nn

#: An input whose first element is this value makes :class:`Poisoned` raise on its batch.
POISON = 999.0
SHAPE = (8,)


class Rows(nn.Module):
    """``[B, 8] -> [B, 3]``: row i depends only on input i (sum, 2 x first, last - 1); ``ms`` per call."""

    def __init__(self, ms: float = 0.0):
        super().__init__()
        self.ms = ms

    @staticmethod
    def expected(x: torch.Tensor) -> torch.Tensor:
        return torch.stack([x.sum(-1), x[..., 0] * 2, x[..., -1] - 1], dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.ms:
            time.sleep(self.ms / 1000)
        return self.expected(x)


class Poisoned(Rows):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (x[:, 0] == POISON).any():
            raise RuntimeError("poisoned batch")
        return super().forward(x)


def rows() -> nn.Module:
    return Rows()


def slow_rows() -> nn.Module:
    return Rows(ms=20.0)


def poisoned() -> nn.Module:
    return Poisoned()


def broken() -> nn.Module:
    raise RuntimeError("this factory cannot build its model")
