"""Shared fixtures for the quantization tests: a tiny CNN, a tiny MLP, small image batches.

Everything is small (3x32x32 inputs, a few thousand parameters) so that the folder runs in well
under a minute on two CPU cores; the digits ResNet-18 is only used where accuracy matters.
"""
from __future__ import annotations

import logging

import pytest
import torch
from torch import nn

from tinymodels import seeded

__all__ = ["TinyCNN", "tiny_cnn_model", "IMAGE"]

IMAGE = (3, 32, 32)   # [C, H, W] of every test input
#: PyTorch 2.14 deprecates torch.ao.quantization and quantized tensors in favour of torchao (not assumed
#: here); the course still uses them, on purpose (QUANTIZATION_GUIDE.md, Task 2.4).
QUIET = ("ignore:.*torch.ao.quantization is deprecated.*", "ignore:.*quantized tensor creation functions.*",
         "ignore:.*reduce_range will be deprecated.*", "ignore:.*TorchScript.*", "ignore::DeprecationWarning")


@pytest.fixture(autouse=True)
def _quiet_onnxruntime_quantizer():
    """ONNX Runtime's quantizer logs advice at WARNING level on the root logger: quiet, for these tests only."""
    root = logging.getLogger()
    before = root.level
    root.setLevel(logging.ERROR)
    yield
    root.setLevel(before)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "phase2_quantization" in item.nodeid:
            for f in QUIET:
                item.add_marker(pytest.mark.filterwarnings(f))


class TinyCNN(nn.Module):
    """conv-BN-ReLU twice, a residual add, global pool, linear: the operators static INT8 must handle."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU())
        self.body = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16))
        self.relu = nn.ReLU()
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:   # [B, 3, H, W] -> [B, classes]
        h = self.stem(x)
        return self.head(self.relu(h + self.body(h)))


def tiny_cnn_model(seed: int = 0) -> TinyCNN:
    return seeded(TinyCNN, seed, mean=0.2, var=(0.5, 1.5))


@pytest.fixture
def tiny_cnn() -> TinyCNN:
    return tiny_cnn_model()


@pytest.fixture
def images() -> torch.Tensor:
    torch.manual_seed(1)
    return torch.randn(48, *IMAGE)


@pytest.fixture
def mlp() -> nn.Module:
    torch.manual_seed(2)
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Sequential(nn.Linear(128, 128), nn.ReLU()),
                         nn.Linear(128, 10)).eval()
