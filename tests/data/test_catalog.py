"""The catalog: every name builds; metadata is right; cached models reach their recorded accuracy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from labdata import catalog, digits
from labdata.detector import evaluate_detections
from labdata.train import evaluate

pytestmark = pytest.mark.data

SPEED = ["resnet18", "resnet50", "mobilenet_v3_large", "efficientnet_b0"]
# Published parameter counts and multiply-accumulates (torchvision model docs, 224x224).
PUBLISHED = {
    "resnet18": (11_689_512, 1.81e9),
    "resnet50": (25_557_032, 4.09e9),
    "mobilenet_v3_large": (5_483_032, 0.22e9),
    "efficientnet_b0": (5_288_548, 0.39e9),
}


def test_list_models():
    names = catalog.list_models()
    assert names[:4] == SPEED
    assert {"digits_cnn", "digits_resnet18", "digits_detector"} <= set(names)


@pytest.mark.parametrize("name", ["digits_cnn", "digits_resnet18", "digits_detector", *SPEED])
def test_build_gives_an_untrained_architecture_in_eval_mode(name):
    model = catalog.build(name)
    assert isinstance(model, torch.nn.Module) and not model.training


def test_unknown_name():
    with pytest.raises(KeyError, match="choose one of"):
        catalog.get("resnet152")
    with pytest.raises(KeyError):
        catalog.build("resnet152")


@pytest.mark.parametrize("name", SPEED)
def test_speed_workloads_are_labelled_untrained(name):
    entry = catalog.get(name)
    m = entry.metadata
    assert not m.trained and m.test_accuracy is None and entry.dataset is None
    assert "UNTRAINED" in m.description
    assert m.input_shape == (3, 224, 224) and m.dtype == "float32" and m.num_classes == 1000
    assert entry.example_input.shape == (1, 3, 224, 224)
    params, macs = PUBLISHED[name]
    assert m.params == params
    assert 0.9 * 2 * macs <= m.flops <= 1.1 * 2 * macs, f"{name}: {m.flops:.3g} FLOPs"
    # same seed, same weights: two builds agree
    a, b = catalog.build(name), catalog.build(name)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


@pytest.mark.parametrize("name,shape", [("digits_cnn", (1, 32, 32)), ("digits_resnet18", (3, 64, 64))])
def test_cached_classifiers_reach_their_recorded_accuracy(name, shape):
    entry = catalog.get(name)  # trains on a fresh clone; `make test` runs `make models` first
    m = entry.metadata
    assert m.trained and m.input_shape == shape and m.num_classes == 10
    assert m.mean == (digits.MEAN,) * shape[0] and m.std == (digits.STD,) * shape[0]
    assert m.params == sum(p.numel() for p in entry.model.parameters()) and m.flops > 0
    assert not entry.model.training
    assert entry.example_input.shape == (1, *shape)
    x, y = entry.dataset("test")
    assert x.shape == (359, *shape)
    acc = evaluate(entry.model, x, y)
    assert acc >= 0.97, f"{name}: test top-1 {acc:.2%} < 97%"
    assert abs(acc - m.test_accuracy) <= 0.005, f"{name}: {acc:.2%} vs recorded {m.test_accuracy:.2%}"
    xc, _ = entry.dataset("calib")
    assert xc.shape == (179, *shape)


def test_detector_reaches_its_recorded_f1():
    entry = catalog.get("digits_detector")
    m = entry.metadata
    assert m.task == "detection" and m.trained and m.test_accuracy >= 0.85
    frames, gt = entry.dataset()
    assert frames.shape == (gt["frame_count"], gt["height"], gt["width"], 3)
    assert entry.example_input.shape == (1, *m.input_shape)
    preds = [entry.model.detect_bgr(f) for f in frames]
    f1 = evaluate_detections(preds, gt["frames"])["f1"]
    assert abs(f1 - m.test_accuracy) <= 0.01, (f1, m.test_accuracy)
    # the nn.Module interface (float frames 0..1, batch) gives the same boxes as the BGR one
    out = entry.model(entry.example_input)
    assert len(out) == 1 and set(out[0]) == {"boxes", "labels", "scores"}
    assert out[0]["boxes"].dtype == torch.float32 and out[0]["labels"].dtype == torch.int64
    assert torch.equal(out[0]["boxes"], preds[0]["boxes"])
    assert np.array_equal(out[0]["labels"].numpy(), preds[0]["labels"].numpy())
