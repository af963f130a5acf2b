"""Task 4.11: the trade-off table measures every variant; the Pareto front keeps what nothing dominates."""
from __future__ import annotations

import pytest

from labdata.video import render_frames
from phase4_production.edge.models import edge_clip_config

from .impl import p4e

pytestmark = pytest.mark.phase4_task11

ROW_KEYS = ("variant", "f1", "latency_ms", "p99_ms", "cpu_ms_per_frame", "model_bytes", "memory_mb")


def row(name, f1, lat, mem=10.0, size=100):
    return {"variant": name, "f1": f1, "latency_ms": lat, "memory_mb": mem, "model_bytes": size}


def test_pareto_front_known_answers():
    rows = [row("best", 0.90, 20), row("fast", 0.80, 5), row("worse", 0.80, 10), row("twin", 0.80, 5),
            row("tiny", 0.70, 5, mem=5)]
    assert p4e.pareto_front(rows) == ["best", "fast", "twin", "tiny"]
    assert p4e.pareto_front(rows, costs=("latency_ms",)) == ["best", "fast", "twin"]
    with pytest.raises(KeyError):
        p4e.pareto_front([{"variant": "x", "f1": 1.0}])


def test_the_table_has_a_row_per_variant(bundle):
    cfg = edge_clip_config(seed=55, frames=10)
    pairs = list(render_frames(cfg))
    import numpy as np

    frames = np.stack([f for f, _ in pairs])
    gt = [{"index": i, "objects": objs} for i, (_, objs) in enumerate(pairs)]
    rows = p4e.tradeoff_table(bundle, frames, gt)
    names = [v.name for v in p4e.load_manifest(bundle).variants]
    assert [r["variant"] for r in rows] == names
    for r in rows:
        assert set(ROW_KEYS) <= set(r)
        assert 0 <= r["f1"] <= 1 and r["latency_ms"] > 0 and r["model_bytes"] > 0
    assert rows[0]["latency_ms"] > rows[-1]["latency_ms"]
