"""The GPU workload of ``p4.server.gpu_scale``: ResNet-50 on camera frames, as a TorchScript model repository.

The seed's server target is "100+ streams, 1000+ FPS on GPU". The grader's model for it is what a video service
sends a GPU server: whole frames as ``UINT8 [224, 224, 3]`` (150 KB a frame, a quarter of the FP32 tensor), turned
into the network's input on the device (scale, normalise, NHWC -> NCHW), then torchvision's ResNet-50 (random
weights, seeded: no download), 1000 FP32 logits out. It is saved as TorchScript ``1/model.pt`` with
``platform: "pytorch_libtorch"``, the repository a full Triton serves with its PyTorch backend, and the learner's
workers run it with PyTorch on ``instance_group { kind: KIND_GPU }`` (``workers.py``).

Every answer is checked: the load client sends frames from a fixed pool whose right outputs the grader computed on
the CPU, in FP32, before the servers start (:func:`frame_pool`). Frames are smooth colour ramps with noise, not
white noise: an untrained ResNet-50 gives nearly the same logits for any two noise images (measured: 0.4 apart on
a scale of 39), and ramps apart by 3 to 46 on a scale of 118, so an answer routed to the wrong request is caught
with a tolerance (``TOLERANCE`` of the output's range) far above FP32's differences between devices.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ...harness import cuda_sync, time_callable
from .workload import GraderModel, read_config

__all__ = ["FRAMES_CONFIG", "TOLERANCE", "FrameClassifier", "frames_repository", "frame_pool", "frames_models",
           "model_ceiling"]

#: An answer is right when every logit is within this share of the largest expected logit (FP32 on any device).
TOLERANCE = 2e-3
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)

FRAMES_CONFIG = """name: "{name}"
platform: "pytorch_libtorch"
max_batch_size: 32
input [ {{ name: "INPUT__0" data_type: TYPE_UINT8 dims: [ {side}, {side}, 3 ] }} ]
output [ {{ name: "OUTPUT__0" data_type: TYPE_FP32 dims: [ 1000 ] }} ]
dynamic_batching {{ max_queue_delay_microseconds: 2000 preferred_batch_size: [ 16, 32 ] }}
instance_group [ {{ count: 2 kind: {kind} }} ]
"""


class FrameClassifier(nn.Module):
    """``uint8 [n, H, W, 3]`` frames -> ``float32 [n, classes]`` logits: scale, normalise, transpose, classify."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1) * 255.0)
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1) * 255.0)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = frames.permute(0, 3, 1, 2).float()
        return self.net((x - self.mean) / self.std)


def frames_repository(root: Path, *, name: str = "resnet50", arch: str = "resnet50", side: int = 224,
                      kind: str = "KIND_GPU") -> Path:
    """``root/<name>/config.pbtxt`` and ``1/model.pt`` (TorchScript of :class:`FrameClassifier` around the seeded
    torchvision ``arch``); ``kind`` of its two instances. Returns the model folder."""
    from labdata.models import build_speed_model

    model = FrameClassifier(build_speed_model(arch, seed=0)).eval()
    folder = Path(root) / name
    (folder / "1").mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated; Triton's backend serves it
        traced = torch.jit.trace(model, torch.zeros(2, side, side, 3, dtype=torch.uint8))
        torch.jit.save(traced, str(folder / "1" / "model.pt"))
    (folder / "config.pbtxt").write_text(FRAMES_CONFIG.format(name=name, side=side, kind=kind), encoding="utf-8")
    return folder


def _frames(count: int, side: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` frames ``uint8 [side, side, 3]``: a colour, a ramp across the frame, noise."""
    ramp = np.linspace(0.0, 1.0, side, dtype=np.float32)
    out = np.empty((count, side, side, 3), np.uint8)
    for i in range(count):
        base = rng.integers(0, 256, size=3)
        slope = rng.integers(-128, 128, size=3)
        axis = ramp[None, :, None] if i % 2 else ramp[:, None, None]
        img = base + axis * slope + rng.normal(0.0, 20.0, (side, side, 3))
        out[i] = np.clip(img, 0, 255).astype(np.uint8)
    return out


def frame_pool(folder: Path, out: Path, *, requests: int = 16, rows: int = 4, seed: int = 0) -> Path:
    """``requests`` request bodies' worth of frames and their right outputs, saved as ``out`` (npz: ``x`` uint8
    ``[requests, rows, H, W, 3]``, ``y`` float32 ``[requests, rows, classes]``) for the load client's ``--pool``.

    The outputs come from the repository's own ``model.pt`` on this process's CPU in FP32 (one thread per core);
    the servers' answers are compared with them to :data:`TOLERANCE` of the largest logit.
    """
    config = read_config(folder)
    side = int(config.input[0].dims[0])
    x = _frames(requests * rows, side, np.random.default_rng(seed))
    model = _load(folder, "cpu")
    with torch.inference_mode():
        y = np.concatenate([model(torch.from_numpy(x[i:i + 16])).numpy() for i in range(0, len(x), 16)])
    np.savez(out, x=x.reshape(requests, rows, *x.shape[1:]), y=y.reshape(requests, rows, -1))
    return Path(out)


def _load(folder: Path, device: str) -> torch.jit.ScriptModule:
    """The repository's ``1/model.pt`` on ``device``, in eval mode."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated; Triton's backend serves it
        return torch.jit.load(str(Path(folder) / "1" / "model.pt"), map_location=device).eval()


def frames_models(folder: Path) -> dict[str, dict[int, GraderModel]]:
    """The repository's version 1 as the grader's model (the workers load ``model.pt`` themselves)."""
    folder = Path(folder)
    return {folder.name: {1: GraderModel(folder.name, 1, read_config(folder), folder / "1" / "model.pt")}}


def model_ceiling(folder: Path, device: str, *, batch: int = 32, repeats: int = 20) -> float:
    """Frames/s of the model alone on ``device`` at ``batch`` frames a call, in this process (TF32 off, as the
    workers run it; the grader's clock, median call): what no server of it can beat. The memory is given back."""
    tf32 = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        ms = _median_call_ms(folder, device, batch, repeats)
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
    return batch / (ms / 1000.0)


def _median_call_ms(folder: Path, device: str, batch: int, repeats: int) -> float:
    side = int(read_config(folder).input[0].dims[0])
    model = _load(folder, device)
    x = torch.from_numpy(_frames(batch, side, np.random.default_rng(1))).to(device)
    with torch.inference_mode():
        return time_callable(lambda: model(x), repeats=repeats, warmup=3,
                             sync=cuda_sync if device.startswith("cuda") else None).median_ms
