"""Fixtures for the data and model-catalog tests: no network, one torch thread.

Every test in this folder runs with outgoing connections blocked twice over: ``socket.socket.connect``
/ ``connect_ex`` / ``socket.create_connection`` / ``socket.getaddrinfo`` are replaced, and an audit
hook (``sys.addaudithook``, which C code cannot bypass) rejects any ``socket.connect`` or
``socket.getaddrinfo`` event while a test runs. Unix-domain sockets stay allowed.
"""

from __future__ import annotations

import socket
import sys

import pytest
import torch


class NetworkBlocked(RuntimeError):
    """Raised when a data or model test tries to reach the network."""


_BLOCKING = {"on": False}


def _audit(event: str, args: tuple) -> None:
    if not _BLOCKING["on"]:
        return
    if event == "socket.connect":
        sock = args[0]
        if getattr(sock, "family", None) == socket.AF_UNIX:
            return
        raise NetworkBlocked(f"network access attempted in a data test: connect {args[1:]!r}")
    if event == "socket.getaddrinfo":
        raise NetworkBlocked(f"network access attempted in a data test: getaddrinfo {args!r}")


sys.addaudithook(_audit)


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Block outgoing connections for the duration of each test."""
    real_connect = socket.socket.connect

    def guarded_connect(self, address, *a, **k):
        if self.family == socket.AF_UNIX:
            return real_connect(self, address, *a, **k)
        raise NetworkBlocked(f"network access attempted in a data test: connect {address!r}")

    def refuse(*args, **kwargs):
        raise NetworkBlocked(f"network access attempted in a data test: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", guarded_connect)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    _BLOCKING["on"] = True
    try:
        yield
    finally:
        _BLOCKING["on"] = False


@pytest.fixture(autouse=True)
def one_thread():
    """Torch inference on one thread: the test machines are small and shared, and two threads on
    a busy 2-core machine can be 30x slower than one."""
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(prev)


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    """Point ``INFERENCE_LAB_CACHE`` at an empty temporary folder for one test."""
    from labdata import CACHE_ENV

    path = tmp_path / "cache"
    monkeypatch.setenv(CACHE_ENV, str(path))
    return path
