"""Task 2.6: the trade-off study: measured rows, the Pareto front, the plot."""
from __future__ import annotations

import struct

import pytest
import torch

from .impl import q

pytestmark = pytest.mark.phase2_task6


def _row(name, acc, lat, supported=True):
    return q.TradeoffRow(variant=name, runtime="pytorch", precision="int8", supported=supported,
                         accuracy_pct=acc if supported else None, latency_ms=lat if supported else None)


def test_pareto_front_keeps_only_undominated_rows():
    rows = [_row("a", 99.0, 10.0), _row("b", 98.0, 2.0), _row("c", 97.0, 5.0),   # c is dominated by b
            _row("d", 99.0, 12.0), _row("e", 99.5, 20.0), _row("f", 0, 0, supported=False)]
    assert [r.variant for r in q.pareto_front(rows)] == ["b", "a", "e"]


def test_pareto_front_keeps_ties():
    rows = [_row("a", 99.0, 3.0), _row("b", 99.0, 3.0)]
    assert sorted(r.variant for r in q.pareto_front(rows)) == ["a", "b"]


def test_plot_is_a_png(tmp_path):
    path = q.plot_pareto([_row("a", 99.0, 10.0), _row("b", 98.0, 2.0)], tmp_path / "plots" / "p.png")
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    w, h = struct.unpack(">II", head[16:24])
    assert w >= 640 and h >= 480


def test_study_on_a_tiny_cnn(tiny_cnn, images, tmp_path):
    y = torch.randint(0, 10, (len(images),))
    variants = ["fp32_eager", "fp32_onnx", "onnx_int8_per_channel_minmax", "fx_int8_minmax", "fp16_cuda"]
    rows = q.run_tradeoff_study(tiny_cnn, images, y, images[:32], tmp_path, variants=variants, repeats=5)
    assert [r.variant for r in rows] == variants
    for r in rows:
        if r.variant == "fp16_cuda" and not torch.cuda.is_available():
            assert not r.supported and "GPU" in r.note
            continue
        assert r.supported and 0 <= r.accuracy_pct <= 100 and r.latency_ms > 0
        assert r.size_bytes == r.artifact.stat().st_size
    by = {r.variant: r for r in rows}
    assert by["onnx_int8_per_channel_minmax"].size_bytes < by["fp32_onnx"].size_bytes   # tiny: graph overhead dominates
    assert (tmp_path / "pareto.png").is_file()
    table = (tmp_path / "tradeoff.md").read_text()
    assert all(v in table for v in variants)


def test_unknown_variant(tiny_cnn, images, tmp_path):
    with pytest.raises(ValueError):
        q.build_variant("int3_magic", tiny_cnn, images, tmp_path)
    with pytest.raises(ValueError):
        q.build_variant("fp32_eager", tiny_cnn, images, tmp_path, calib_batch=0)
    with pytest.raises(ValueError):                 # checked before the first variant is built
        q.run_tradeoff_study(tiny_cnn, images, torch.zeros(len(images), dtype=torch.long), images, tmp_path,
                             variants=["fp32_eager", "int3_magic"])
    assert not (tmp_path / "artifacts").exists()
