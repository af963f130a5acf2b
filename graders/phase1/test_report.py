"""Task 1.7: the performance report holds every field, equal to its inputs, and both plots."""
from __future__ import annotations

import json
import math
import random
from pathlib import Path

from ..checks import expect
from ..plugin import criterion

LAT_KEYS = ("mean_ms", "std_ms", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "min_ms", "max_ms", "cv", "n_samples")


def _inputs(mod):
    """Build report inputs with the learner's own dataclasses (helpers given in full in the starter)."""
    rng = random.Random()
    n = rng.choice([120, 700])  # p99 is an estimate below 662 samples, p95 below 130
    samples = sorted(rng.uniform(4, 9) for _ in range(n))
    lat = mod.LatencyStats(mean_ms=6.5, std_ms=1.2, p50_ms=6.4, p90_ms=8.1, p95_ms=8.5, p99_ms=8.9,
                           min_ms=4.0, max_ms=9.0, cv=1.2 / 6.5, n_samples=n, samples_ms=samples)
    tp = [mod.ThroughputPoint(batch_size=b, samples_per_s=100.0 * b ** 0.5, latency_ms=10 * b ** 0.5)
          for b in (1, 4, 16)]
    mem = mod.MemoryReport(baseline_bytes=100_000_000, peak_bytes=160_000_000, delta_bytes=60_000_000, device="cpu")
    ops = [mod.OpStat(name="aten::mkldnn_convolution", self_time_ms=12.5, calls=30),
           mod.OpStat(name="aten::addmm", self_time_ms=3.25, calls=10)]
    devs = [mod.DeviceResult(device="cpu", available=True, p50_ms=6.4, samples_per_s=156.25, reason=""),
            mod.DeviceResult(device="cuda", available=False, p50_ms=None, samples_per_s=None,
                             reason="no CUDA device (torch.cuda.is_available() is False)")]
    return lat, tp, mem, ops, devs


def _close(a, b) -> bool:
    try:
        return math.isclose(float(a), float(b), rel_tol=1e-6, abs_tol=1e-9)
    except (TypeError, ValueError):
        return False


def _is_png(path: Path) -> bool:
    try:
        from matplotlib.image import imread

        img = imread(str(path))
        return img.ndim >= 2 and img.shape[0] >= 50 and img.shape[1] >= 50
    except Exception:
        return False


@criterion("p1.report_complete")
def test_report_complete(grade, learner, tmp_path):
    mod = learner.module
    learner.attr("write_report")
    try:
        lat, tp, mem, ops, devs = _inputs(mod)
    except Exception as e:  # the learner changed the given dataclasses
        expect(False, f"could not build LatencyStats/ThroughputPoint/... from your types.py ({e}); "
                      f"keep the given dataclasses as they are")
    out = tmp_path / "report"
    learner.call("write_report", "resnet18", lat, tp, mem, ops, devs, out)
    checks: dict[str, bool] = {}
    jpath, mpath = out / "report.json", out / "report.md"
    checks["report.json exists"] = jpath.is_file()
    checks["report.md exists"] = mpath.is_file()
    data = {}
    if jpath.is_file():
        try:
            data = json.loads(jpath.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            checks["report.json is valid JSON"] = False
    checks["model name"] = data.get("model") == "resnet18"
    env = data.get("environment") or {}
    checks["environment keys"] = all(k in env for k in ("python", "torch", "platform", "cpu_count", "cuda"))
    jl = data.get("latency") or {}
    for k in LAT_KEYS:
        checks[f"latency.{k}"] = _close(jl.get(k), getattr(lat, k))
    est = jl.get("estimates") or {}
    for q in (90, 95, 99):
        checks[f"latency.estimates.p{q}"] = est.get(f"p{q}") is (lat.n_samples < {90: 64, 95: 130, 99: 662}[q])
    jt = data.get("throughput") or []
    checks["throughput points"] = len(jt) == len(tp) and all(
        _close(a.get("batch_size"), b.batch_size) and _close(a.get("samples_per_s"), b.samples_per_s)
        and _close(a.get("latency_ms"), b.latency_ms) for a, b in zip(jt, tp) if isinstance(a, dict))
    jm = data.get("memory") or {}
    checks["memory"] = all(_close(jm.get(k), getattr(mem, k)) for k in ("baseline_bytes", "peak_bytes", "delta_bytes"))
    jo = data.get("operators") or []
    checks["operators"] = len(jo) == len(ops) and all(
        isinstance(a, dict) and a.get("name") == b.name and _close(a.get("self_time_ms"), b.self_time_ms)
        for a, b in zip(jo, ops))
    jd = data.get("devices") or []
    checks["devices"] = len(jd) == 2 and isinstance(jd[1], dict) and jd[1].get("available") is False \
        and bool(jd[1].get("reason")) and jd[1].get("p50_ms") is None
    plots = data.get("plots") or {}
    for key in ("latency_histogram", "throughput"):
        name = plots.get(key)
        checks[f"plot {key} is a PNG"] = bool(name) and _is_png(out / name)
    md = mpath.read_text(encoding="utf-8", errors="replace") if mpath.is_file() else ""
    checks["report.md names the model"] = "resnet18" in md
    checks["report.md embeds both plots"] = all(f"({plots.get(k, '?')})" in md for k in ("latency_histogram", "throughput"))
    checks["report.md shows p50"] = "p50" in md.lower()
    checks["report.md marks estimates"] = lat.n_samples >= 662 or "estimate" in md.lower()
    checks["report.md gives the skipped device's reason"] = "torch.cuda.is_available() is False" in md
    missing = [k for k, ok in checks.items() if not ok]
    share = 100 * (len(checks) - len(missing)) / len(checks)
    grade.record(share, message=("missing or wrong: " + "; ".join(missing)) if missing else "all present",
                 details={"checks": len(checks), "missing": missing, "n_samples": lat.n_samples})
