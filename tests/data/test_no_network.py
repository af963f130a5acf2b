"""Nothing in the data and model code opens a network connection.

``conftest.py`` blocks sockets for every test in this folder; these tests prove the block works
and run the complete offline path (split file, video, training, catalog) under it.
"""

from __future__ import annotations

import socket
import urllib.request

import pytest

pytestmark = pytest.mark.data

BLOCKED = "network access attempted"  # the message of conftest.NetworkBlocked


def test_the_block_is_active():
    with pytest.raises(RuntimeError, match=BLOCKED):
        socket.create_connection(("192.0.2.1", 80), timeout=1)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        with pytest.raises(RuntimeError, match=BLOCKED):
            s.connect(("192.0.2.1", 80))
        with pytest.raises(RuntimeError, match=BLOCKED):
            socket.socket.connect(s, ("192.0.2.1", 80))
    finally:
        s.close()
    with pytest.raises(RuntimeError, match=BLOCKED):
        urllib.request.urlopen("http://192.0.2.1/", timeout=1)


def test_the_audit_hook_catches_c_level_sockets():
    import _socket

    raw = _socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # not the patched Python class
    try:
        with pytest.raises(RuntimeError, match=BLOCKED):
            raw.connect(("192.0.2.1", 80))
    finally:
        raw.close()


def test_generate_train_and_catalog_offline(tmp_cache, monkeypatch, capsys):
    import dataclasses

    from labdata import catalog, generate, train

    assert generate.main([]) == 0
    assert generate.main([]) == 0
    out = capsys.readouterr().out
    assert "built" in out and "reused" in out
    tiny = dataclasses.replace(train.RECIPES["digits_cnn"], epochs=1, train_limit=128)
    monkeypatch.setitem(train.RECIPES, "digits_cnn", tiny)
    entry = catalog.get("digits_cnn")
    assert entry.metadata.trained and str(train.cache_paths(tiny)[0]).startswith(str(tmp_cache))
    for name in ("resnet18", "mobilenet_v3_large"):
        assert not catalog.get(name).metadata.trained


def test_torchvision_weights_are_never_requested():
    from labdata import catalog

    # building with weights=None must not touch torch.hub; a hub download would hit the block
    model = catalog.build("efficientnet_b0")
    assert sum(p.numel() for p in model.parameters()) > 0
