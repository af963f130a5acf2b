"""Architectures of the catalog, built without weights (fast; no download ever).

* Speed workloads: torchvision ``resnet18``, ``resnet50``, ``mobilenet_v3_large``,
  ``efficientnet_b0`` with ``weights=None`` (random init, 1000 classes, 3x224x224). Untrained:
  fine for timing, never for accuracy.
* Accuracy workloads: :class:`DigitsCNN` (1x32x32) and torchvision ``resnet18(num_classes=10)``
  at 3x64x64, trained on the digits by :mod:`labdata.train`.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["DigitsCNN", "SPEED_ARCHITECTURES", "build_speed_model", "build_digits_resnet18"]


class DigitsCNN(nn.Module):
    """Small CNN for 1x32x32 digits: three conv-BN-ReLU-maxpool blocks and a 2-layer head.

    About 0.16 M parameters and 5 MFLOPs per sample; the size of model the dynamic-batching
    and edge workloads use, and the crop classifier of the digit detector.

    Input: float32 [B, 1, 32, 32], normalised with ``labdata.digits.MEAN``/``STD``.
    Output: float32 [B, 10] logits.
    """

    def __init__(self, num_classes: int = 10, width: int = 16) -> None:
        super().__init__()
        c1, c2, c3 = width, 2 * width, 4 * width

        def block(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                                 nn.BatchNorm2d(cout), nn.ReLU(inplace=True), nn.MaxPool2d(2))

        self.features = nn.Sequential(block(1, c1), block(c1, c2), block(c2, c3))  # [B, c3, 4, 4]
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(c3 * 4 * 4, 128),
                                        nn.ReLU(inplace=True), nn.Dropout(0.2),
                                        nn.Linear(128, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


#: The speed workloads: names of ``torchvision.models`` builders. torchvision is imported when a model is built,
#: not with this module (its import costs about 2 s, paid by every grade that loads the catalog).
SPEED_ARCHITECTURES: tuple[str, ...] = ("resnet18", "resnet50", "mobilenet_v3_large", "efficientnet_b0")


def build_speed_model(name: str, *, seed: int = 0) -> nn.Module:
    """An untrained torchvision classifier (1000 classes, expects 3x224x224), in eval mode.

    Args:
        name: a key of :data:`SPEED_ARCHITECTURES`.
        seed: seeds the random initialisation, so two builds have identical weights.
    """
    if name not in SPEED_ARCHITECTURES:
        raise KeyError(f"unknown speed architecture {name!r}; choose one of {sorted(SPEED_ARCHITECTURES)}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        import torchvision

        model = getattr(torchvision.models, name)(weights=None)
    return model.eval()


def build_digits_resnet18() -> nn.Module:
    """torchvision ResNet-18 with 10 classes for 3x64x64 digits (unchanged architecture)."""
    import torchvision

    return torchvision.models.resnet18(weights=None, num_classes=10)
