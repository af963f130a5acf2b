"""Steady garbage collection for every Phase 3 criterion.

A process that has imported PyTorch, torchvision and the grader holds a few hundred thousand
objects; a full collection of them stops every Python thread for 100-200 ms (measured here), which is
a latency spike, a gap in a Poisson schedule, a stall in a flood. Before each criterion the grader
collects once and freezes what survives (``gc.freeze``: long-lived objects are no longer scanned), so
the collector only ever walks what the criterion itself creates, and unfreezes afterwards.
"""
from __future__ import annotations

import gc

import pytest


@pytest.fixture(autouse=True)
def steady_gc():
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
