"""Training is reproducible, cached by content hash, and retrains when the recipe changes."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from labdata import train
from labdata.train import RECIPES, TrainConfig

pytestmark = pytest.mark.data

# A small recipe (two epochs of the small CNN) so that the test takes seconds, not minutes.
TINY = TrainConfig("tiny_cnn", "digits_cnn", size=32, channels=1, epochs=2, lr=3e-3, shift=3)


def test_same_seed_same_model():
    a = train.train(TINY)
    b = train.train(TINY)
    acc_a, acc_b = a.record["test_accuracy"], b.record["test_accuracy"]
    assert abs(acc_a - acc_b) <= 0.005, (acc_a, acc_b)
    assert acc_a > 0.8, f"two epochs should already reach 80 %, got {acc_a:.2%}"
    # deterministic algorithms, one thread, seeded order and augmentation: bit-identical weights
    for (k, p), q in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(p, q), k


def test_fingerprint_covers_the_recipe():
    assert TINY.fingerprint() == dataclasses.replace(TINY).fingerprint()
    assert TINY.fingerprint() != dataclasses.replace(TINY, epochs=3).fingerprint()
    assert TINY.fingerprint() != dataclasses.replace(TINY, seed=1).fingerprint()
    names = {train.cache_paths(c)[0].name for c in RECIPES.values()}
    assert all(n.count("-") == 1 and n.endswith(".pt") for n in names)


def test_recipes_fit_the_time_budget():
    # full-size recipes (measured: ~7 s and ~80 s on 2 shared cores, see datasets/README.md)
    assert RECIPES["digits_cnn"].threads == RECIPES["digits_resnet18"].threads == 1
    assert RECIPES["digits_resnet18"].epochs <= 8


def test_cache_reuse_corruption_and_cli(tmp_cache, monkeypatch, capsys):
    tiny = dataclasses.replace(TINY, epochs=1, train_limit=256)
    monkeypatch.setitem(RECIPES, "tiny_cnn", tiny)
    first, built = train.ensure_trained("tiny_cnn")
    assert built
    weights, sidecar = train.cache_paths(tiny)
    assert weights.exists() and str(weights).startswith(str(tmp_cache))
    record = json.loads(sidecar.read_text())
    for key in ("test_accuracy", "val_accuracy", "train_seconds", "fingerprint", "torch",
                "weights_sha256", "config", "threads"):
        assert key in record
    again, built = train.ensure_trained("tiny_cnn")
    assert not built and again.record["test_accuracy"] == first.record["test_accuracy"]
    # a damaged weights file is noticed and rebuilt, not loaded
    weights.write_bytes(b"not a state dict")
    rebuilt, built = train.ensure_trained("tiny_cnn")
    assert built and rebuilt.record["weights_sha256"] == record["weights_sha256"]
    # the command line says what it reused
    capsys.readouterr()
    assert train.main(["tiny_cnn", "-q"]) == 0
    assert "reused" in capsys.readouterr().out


def test_missing_model_without_training_says_what_to_run(tmp_cache):
    with pytest.raises(FileNotFoundError, match="make models"):
        train.ensure_trained("digits_cnn", train_if_missing=False)
    with pytest.raises(KeyError):
        train.ensure_trained("no_such_model")
