"""``TritonPeer.start``: Triton's own start-up is tried again, a repository it cannot serve is not (no Triton run)."""
from __future__ import annotations

import pytest

from phase4_production.server import triton_peer
from phase4_production.server.triton_peer import PeerError, TritonPeer


def _peer(monkeypatch, failures):
    monkeypatch.setattr(triton_peer, "triton_available", lambda: None)
    peer, calls = TritonPeer("unused"), []

    def once():
        calls.append(1)
        if failures:
            raise failures.pop(0)
        return peer
    monkeypatch.setattr(peer, "_start_once", once)
    return peer, calls


def test_a_start_up_failure_of_triton_is_tried_again(monkeypatch):
    peer, calls = _peer(monkeypatch, [PeerError("handshake refused", retry=True)] * 2)
    assert peer.start() is peer and len(calls) == 3


def test_a_repository_triton_cannot_serve_fails_at_once_and_retries_are_bounded(monkeypatch):
    peer, calls = _peer(monkeypatch, [PeerError("config.pbtxt: max_batch")])
    with pytest.raises(PeerError, match="max_batch"):
        peer.start()
    assert len(calls) == 1
    peer, calls = _peer(monkeypatch, [PeerError("handshake refused", retry=True)] * 5)
    with pytest.raises(PeerError, match="handshake"):
        peer.start()
    assert len(calls) == 3
