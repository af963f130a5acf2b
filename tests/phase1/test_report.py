"""Task 1.7: report.json holds every key with the input values; report.md embeds both plots."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from .impl import p1

pytestmark = pytest.mark.phase1_task7


def _latency(samples: list[float]):
    """LatencyStats built here with numpy, so these tests do not depend on Task 1.2."""
    a = np.asarray(samples)
    p50, p90, p95, p99 = (float(v) for v in np.percentile(a, [50, 90, 95, 99]))
    mean, std = float(a.mean()), float(a.std())
    return p1.LatencyStats(mean_ms=mean, std_ms=std, p50_ms=p50, p90_ms=p90, p95_ms=p95, p99_ms=p99,
                           min_ms=float(a.min()), max_ms=float(a.max()),
                           cv=std / mean if mean else float("nan"), n_samples=len(samples),
                           samples_ms=list(samples))


@pytest.fixture
def inputs():
    latency = _latency([1.0 + 0.01 * i for i in range(200)])   # 200 samples: only p99 is an estimate
    throughput = [p1.ThroughputPoint(1, 100.0, 10.0), p1.ThroughputPoint(8, 400.0, 20.0)]
    memory = p1.MemoryReport(baseline_bytes=1000, peak_bytes=5000, delta_bytes=4000, device="cpu")
    operators = [p1.OpStat("aten::addmm", 12.5, 9), p1.OpStat("aten::relu", 0.5, 6)]
    devices = [p1.DeviceResult("cpu", True, 10.0, 100.0),
               p1.DeviceResult("cuda", False, None, None, "no CUDA device (torch.cuda.is_available() is False)")]
    return latency, throughput, memory, operators, devices


def _close(a, b) -> bool:
    if isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-6)
    return a == b


def test_json_has_every_key_with_the_input_values(tmp_path, inputs):
    latency, throughput, memory, operators, devices = inputs
    paths = p1.write_report("tiny", latency, throughput, memory, operators, devices, tmp_path / "out")
    assert paths.json == tmp_path / "out" / "report.json"
    data = json.loads(paths.json.read_text())
    assert data["model"] == "tiny"
    assert set(data["environment"]) == {"python", "torch", "platform", "cpu_count", "cuda"}
    assert isinstance(data["environment"]["cpu_count"], int)
    for key in ("mean_ms", "std_ms", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "min_ms", "max_ms", "cv",
                "n_samples"):
        assert _close(data["latency"][key], getattr(latency, key)), key
    assert data["latency"]["estimates"] == {"p90": False, "p95": False, "p99": True}
    assert data["throughput"] == [{"batch_size": 1, "samples_per_s": 100.0, "latency_ms": 10.0},
                                  {"batch_size": 8, "samples_per_s": 400.0, "latency_ms": 20.0}]
    assert data["memory"] == {"baseline_bytes": 1000, "peak_bytes": 5000, "delta_bytes": 4000, "device": "cpu"}
    assert data["operators"] == [{"name": "aten::addmm", "self_time_ms": 12.5, "calls": 9},
                                 {"name": "aten::relu", "self_time_ms": 0.5, "calls": 6}]
    assert data["devices"][1] == {"device": "cuda", "available": False, "p50_ms": None, "samples_per_s": None,
                                  "reason": "no CUDA device (torch.cuda.is_available() is False)"}
    assert data["plots"] == {"latency_histogram": "latency_histogram.png", "throughput": "throughput.png"}


def test_plots_are_valid_pngs(tmp_path, inputs):
    import matplotlib.image

    paths = p1.write_report("tiny", *inputs, tmp_path)
    assert set(paths.plots) == {"latency_histogram", "throughput"}
    for path in paths.plots.values():
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        height, width, _ = matplotlib.image.imread(path).shape
        assert height > 100 and width > 100


def test_markdown_has_the_tables_and_embeds_both_plots(tmp_path, inputs):
    paths = p1.write_report("tiny", *inputs, tmp_path)
    md = paths.markdown.read_text()
    assert md.startswith("# ") and "tiny" in md.splitlines()[0]
    assert "p99 (estimate)" in md and "p90 (estimate)" not in md
    assert "](latency_histogram.png)" in md and "](throughput.png)" in md
    assert "aten::addmm" in md
    assert "no CUDA device" in md


def test_nan_becomes_null_so_the_json_stays_valid(tmp_path, inputs):
    _, throughput, memory, operators, devices = inputs
    latency = _latency([0.0, 0.0])      # mean 0: cv is nan
    paths = p1.write_report("zero", latency, throughput, memory, operators, devices, tmp_path)
    assert json.loads(paths.json.read_text())["latency"]["cv"] is None
