"""Shared fixtures for the Phase 1 tests: a tiny CNN and that CNN saved in every format.

Everything is small (3x32x32 inputs, a few thousand parameters) so the whole folder runs in about a
minute on two CPU cores.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

# Kineto (torch.profiler's C++ side) reads this at the first profile: keep its progress lines quiet.
os.environ.setdefault("KINETO_LOG_LEVEL", "6")

import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

__all__ = ["TinyCNN", "make_tiny_cnn"]

IMAGE = (3, 32, 32)   # [C, H, W] of every test input


class TinyCNN(nn.Module):
    """conv-BN-ReLU twice, global average pool, dropout, linear: every layer eval() changes is here."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
            nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.dropout = nn.Dropout(0.5)
        self.head = nn.Linear(16, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:   # [B, 3, H, W] -> [B, num_classes]
        return self.head(self.dropout(self.features(x)))


def make_tiny_cnn(seed: int = 0) -> TinyCNN:
    """A seeded TinyCNN in eval mode with non-trivial batch-norm statistics."""
    torch.manual_seed(seed)
    model = TinyCNN()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    return model.eval()


@pytest.fixture
def tiny_cnn() -> TinyCNN:
    return make_tiny_cnn()


@pytest.fixture(scope="session")
def saved_formats(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The seeded TinyCNN saved as TorchScript, torch.export (.pt2) and ONNX, with a dynamic batch."""
    model = make_tiny_cnn()
    example = torch.randn(2, *IMAGE)
    folder = tmp_path_factory.mktemp("formats")
    paths = {"torchscript": folder / "tiny.ts", "export": folder / "tiny.pt2", "onnx": folder / "tiny.onnx"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                       # TorchScript's deprecation notices
        torch.jit.save(torch.jit.trace(model, example), str(paths["torchscript"]))
        batch = torch.export.Dim("batch", min=1, max=64)
        program = torch.export.export(model, (example,), dynamic_shapes=({0: batch},))
        torch.export.save(program, str(paths["export"]))
        torch.onnx.export(model, (example,), str(paths["onnx"]), input_names=["input"], output_names=["logits"],
                          dynamic_shapes=({0: "batch"},), external_data=False, verbose=False)
    return paths
