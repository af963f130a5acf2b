"""A bundle built once for the edge tests that need one (about 10 s: two exports, two INT8 calibrations)."""
from __future__ import annotations

import pytest

from phase4_production.edge.models import edge_frames

from .impl import p4e


@pytest.fixture(scope="session")
def bundle(tmp_path_factory):
    """A bundle folder written by ``build_bundle`` (Task 4.8)."""
    return p4e.build_bundle(tmp_path_factory.mktemp("edge") / "bundle")


@pytest.fixture(scope="session")
def frames():
    """uint8 [20, 240, 320, 3] frames of an edge clip, rendered in memory."""
    return edge_frames(seed=321, frames=20)
