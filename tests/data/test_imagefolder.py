"""A learner's own images: ImageFolder layout, clear errors, never a download."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from labdata.imagefolder import imagefolder_dataset, load_imagefolder

pytestmark = pytest.mark.data


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "images"
    for cls, n in (("cat", 3), ("dog", 2)):
        (root / cls).mkdir(parents=True)
        for i in range(n):
            arr = rng.integers(0, 256, (40 + i, 50, 3), dtype=np.uint8)
            Image.fromarray(arr).save(root / cls / f"{i}.png")
    (root / "dog" / "notes.txt").write_text("not an image")
    return root


def test_load_imagefolder(folder):
    x, y, classes = load_imagefolder(folder, size=32)
    assert classes == ["cat", "dog"]
    assert x.shape == (5, 3, 32, 32) and x.dtype == torch.float32
    assert y.tolist() == [0, 0, 0, 1, 1]
    assert abs(float(x.mean())) < 2.5  # normalised, not 0..255
    grey, _, _ = load_imagefolder(folder, size=16, channels=1, mean=(0.5,), std=(0.25,))
    assert grey.shape == (5, 1, 16, 16)
    few, ys, _ = load_imagefolder(folder, size=16, limit=2)
    assert len(few) == 2 and ys.tolist() == [0, 1]
    assert len(imagefolder_dataset(folder, size=16)) == 5


def test_missing_and_empty_folders_raise_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="ImageFolder layout"):
        load_imagefolder(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no class sub-folders"):
        load_imagefolder(tmp_path / "empty")
    (tmp_path / "noimg" / "cat").mkdir(parents=True)
    (tmp_path / "noimg" / "cat" / "a.txt").write_text("x")
    with pytest.raises(ValueError, match="no images"):
        load_imagefolder(tmp_path / "noimg")
    f = tmp_path / "file.png"
    f.write_bytes(b"x")
    with pytest.raises(NotADirectoryError):
        load_imagefolder(f)


def test_grey_needs_one_mean_and_std(folder):
    with pytest.raises(ValueError, match="mean/std"):
        load_imagefolder(folder, channels=1)  # ImageNet mean/std have three values
