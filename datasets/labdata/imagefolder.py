"""Your own local images: a folder in ImageFolder layout (``root/<class>/<image>``). Never a download.

    my_images/
        cat/  0001.jpg 0002.png ...
        dog/  0001.jpg ...

Classes are the sub-folder names in sorted order (for ImageNet-val arranged into synset folders,
``n01440764`` ... ``n15075141``, that is torchvision's ImageNet class order). Images are decoded
with Pillow, resized so the short side is ``resize`` (default ``size * 256 / 224``), centre-cropped
to ``size`` and normalised, as torchvision's ImageNet evaluation does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "IMAGE_EXTENSIONS", "imagefolder_dataset", "load_imagefolder"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def _check_root(root: str | Path) -> Path:
    root = Path(root).expanduser()
    if not root.exists():
        raise FileNotFoundError(
            f"image folder not found: {root}. Expected an ImageFolder layout, "
            "root/<class name>/<image files>; nothing is ever downloaded.")
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is a file; pass the folder that holds one sub-folder per class")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise ValueError(f"{root} has no class sub-folders; expected root/<class name>/<image files>")
    has_images = any(f.suffix.lower() in IMAGE_EXTENSIONS
                     for c in classes for f in (root / c).rglob("*") if f.is_file())
    if not has_images:
        raise ValueError(f"{root} has class folders {classes[:5]}{'...' if len(classes) > 5 else ''} "
                         f"but no images with extensions {IMAGE_EXTENSIONS}")
    return root


def imagefolder_dataset(
    root: str | Path,
    *,
    size: int = 224,
    resize: int | None = None,
    channels: int = 3,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
):
    """A ``torchvision.datasets.ImageFolder`` whose items are (float32 [channels, size, size], int label).

    Args:
        root: the folder (see the module docstring).
        size: output height and width in pixels after the centre crop.
        resize: short side before cropping; default ``round(size * 256 / 224)``.
        channels: 3 (RGB) or 1 (grey; ``mean``/``std`` then need one value, e.g. the digits').
        mean, std: per-channel normalisation applied to 0..1 pixels.

    Raises:
        FileNotFoundError / NotADirectoryError / ValueError: missing folder, a file, or no images.
    """
    from torchvision import datasets, transforms

    root = _check_root(root)
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    if len(mean) != channels or len(std) != channels:
        raise ValueError(f"mean/std need {channels} values, got {len(mean)}/{len(std)}")
    steps = [transforms.Resize(resize or round(size * 256 / 224),
                               interpolation=transforms.InterpolationMode.BILINEAR, antialias=True),
             transforms.CenterCrop(size)]
    if channels == 1:
        steps.append(transforms.Grayscale(1))
    steps += [transforms.ToTensor(), transforms.Normalize(list(mean), list(std))]
    return datasets.ImageFolder(str(root), transform=transforms.Compose(steps),
                                is_valid_file=lambda p: Path(p).suffix.lower() in IMAGE_EXTENSIONS)


def load_imagefolder(
    root: str | Path,
    *,
    size: int = 224,
    resize: int | None = None,
    channels: int = 3,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    limit: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Load a local image folder into memory.

    Args:
        limit: keep at most this many images, evenly spaced over the sorted file list (so every
            class is represented when ``limit`` >= the number of classes); None = all.
        Other arguments: see :func:`imagefolder_dataset`.

    Returns:
        images: float32 [N, channels, size, size], normalised.
        labels: int64 [N], indices into ``classes``.
        classes: class names (sorted sub-folder names).
    """
    ds = imagefolder_dataset(root, size=size, resize=resize, channels=channels, mean=mean, std=std)
    n = len(ds)
    idx = range(n) if limit is None or limit >= n else np.linspace(0, n - 1, limit).round().astype(int)
    xs, ys = [], []
    for i in idx:
        x, y = ds[int(i)]
        xs.append(x)
        ys.append(y)
    return torch.stack(xs), torch.tensor(ys, dtype=torch.int64), list(ds.classes)
