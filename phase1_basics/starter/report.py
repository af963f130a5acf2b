"""Task 1.7: one performance report (JSON for machines, Markdown with plots for people).

Guide: IMPLEMENTATION_GUIDE.md#task-17-performance-report
"""
from __future__ import annotations

import math
import os
import platform
import sys
from typing import Any

import torch

from ..types import DeviceResult, LatencyStats, MemoryReport, OpStat, ReportPaths, ThroughputPoint

__all__ = ["environment_info", "write_report"]


# ---------------------------------------------------------------------------------------------------
# Helper (written in full): what the numbers were measured on
# ---------------------------------------------------------------------------------------------------
def environment_info() -> dict[str, Any]:
    """The report's "environment" block: python, torch, platform, cpu_count, cuda (GPU name or None)."""
    cuda = None
    if torch.cuda.is_available():
        cuda = f"{torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda})"
    return {"python": sys.version.split()[0], "torch": torch.__version__, "platform": platform.platform(),
            "cpu_count": os.cpu_count() or 1, "cuda": cuda}


def _finite(value: Any) -> Any:
    """JSON has no NaN or Infinity: write null instead (recursively through dicts and lists)."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# ---------------------------------------------------------------------------------------------------
# ## Task 1.7: performance report
# ---------------------------------------------------------------------------------------------------
def write_report(model_name: str, latency: LatencyStats, throughput: list[ThroughputPoint],
                 memory: MemoryReport, operators: list[OpStat], devices: list[DeviceResult],
                 out_dir: str | os.PathLike) -> ReportPaths:
    """Write report.json, report.md and two PNG plots into ``out_dir`` (created if missing).

    Args:
        model_name: the model's label, used in the title.
        latency: Task 1.2's ``LatencyStats`` (ms).
        throughput: Task 1.3's points (batch size, samples/s, ms per batch call).
        memory: Task 1.4's ``MemoryReport`` (bytes).
        operators: Task 1.5's top operators (self time in ms).
        devices: Task 1.6's rows ("cpu", "cuda").
        out_dir: the folder to write into.

    Returns:
        ``ReportPaths``: ``markdown`` (out_dir/report.md), ``json`` (out_dir/report.json) and
        ``plots`` {"latency_histogram": out_dir/latency_histogram.png, "throughput": out_dir/throughput.png}.

    report.json holds: "model"; "environment" {python, torch, platform, cpu_count, cuda (str or null)};
    "latency" {mean_ms, std_ms, p50_ms, p90_ms, p95_ms, p99_ms, min_ms, max_ms, cv, n_samples,
    "estimates" {"p90", "p95", "p99": ``latency.percentile_is_estimate(q)``}}; "throughput" [{batch_size,
    samples_per_s, latency_ms}]; "memory" {baseline_bytes, peak_bytes, delta_bytes, device};
    "operators" [{name, self_time_ms, calls}]; "devices" [{device, available, p50_ms, samples_per_s,
    reason}]; "plots" {"latency_histogram": "latency_histogram.png", "throughput": "throughput.png"}.
    report.md: a title with the model name; tables for latency (p99 marked "(estimate)" when it is one),
    throughput, memory, top operators and devices (a skipped device shows its reason); both plots
    embedded as ``![...](latency_histogram.png)`` and ``![...](throughput.png)``.

    Tolerance the grader applies (p1.report_complete): 100 % of its checks. Every key present, values
    equal to the inputs within 1e-6 relative, both PNG files readable images, and report.md naming the
    model, showing p50, marking estimates, embedding both plots and giving a skipped device's reason.

    Guide: IMPLEMENTATION_GUIDE.md#task-17-performance-report
    """
    # Step 1: out = Path(out_dir); out.mkdir(parents=True, exist_ok=True).
    # Step 2: build the dict above: dataclasses.asdict(...) does most of it (leave samples_ms out of
    #   "latency"; add "estimates" with latency.percentile_is_estimate(q)); "environment" is
    #   environment_info(). Write it with json.dumps(_finite(data), indent=2).
    # Step 3: two PNGs without touching pyplot's global state (safe in notebooks too):
    #   from matplotlib.figure import Figure; from matplotlib.backends.backend_agg import FigureCanvasAgg
    #   fig = Figure(); FigureCanvasAgg(fig); ax = fig.add_subplot(); ax.hist(latency.samples_ms, ...);
    #   fig.savefig(out / "latency_histogram.png"). Then samples/s against batch size -> throughput.png.
    # Step 4: report.md: "# ... {model_name}", Markdown tables ("| p99 (estimate) | ... |"), the device
    #   reasons, and ![latency histogram](latency_histogram.png), ![throughput](throughput.png).
    # Step 5: return ReportPaths(markdown=..., json=..., plots={"latency_histogram": ..., "throughput": ...}).
    raise NotImplementedError("Task 1.7: see IMPLEMENTATION_GUIDE.md#task-17-performance-report")
