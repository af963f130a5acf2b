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
from tinymodels import TinyCNN, seeded  # noqa: E402

__all__ = ["TinyCNN", "make_tiny_cnn"]

IMAGE = (3, 32, 32)   # [C, H, W] of every test input


def make_tiny_cnn(seed: int = 0) -> TinyCNN:
    """A seeded TinyCNN in eval mode with non-trivial batch-norm statistics."""
    return seeded(TinyCNN, seed)


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
