# REFERENCE SOLUTION: excluded from the learner release (make release).
"""Task 1.7: one performance report (JSON for machines, Markdown with plots for people).

Guide: IMPLEMENTATION_GUIDE.md#task-17-performance-report
"""
from __future__ import annotations

# BEGIN SOLUTION
import dataclasses
import json
# END SOLUTION
import math
import os
import platform
import sys
# BEGIN SOLUTION
from pathlib import Path
# END SOLUTION
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


# BEGIN SOLUTION
def _fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


# END SOLUTION
# ---------------------------------------------------------------------------------------------------
# ## Task 1.7: performance report
# ---------------------------------------------------------------------------------------------------
# BEGIN SOLUTION
def _plot_latency(latency: LatencyStats, path: Path, title: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.5))
    FigureCanvasAgg(fig)                                    # the Agg backend, no global pyplot state
    ax = fig.add_subplot()
    ax.hist(latency.samples_ms, bins=min(50, max(5, latency.n_samples // 4)), color="#4c72b0")
    for value, label, style in ((latency.p50_ms, "p50", "-"), (latency.p99_ms, "p99", "--")):
        note = " (estimate)" if label == "p99" and latency.percentile_is_estimate(99) else ""
        ax.axvline(value, color="black", linestyle=style, label=f"{label} {value:.2f} ms{note}")
    ax.set(xlabel="latency (ms)", ylabel="calls", title=title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def _plot_throughput(points: list[ThroughputPoint], path: Path, title: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    sizes = [p.batch_size for p in points]
    ax.plot(sizes, [p.samples_per_s for p in points], "o-", color="#4c72b0", label="samples/s")
    ax.set(xlabel="batch size", ylabel="samples/s", title=title)
    if sizes:
        ax.set_xscale("log", base=2)
        ax.set_xticks(sizes, [str(s) for s in sizes])
    ax2 = ax.twinx()                                          # the price of batching: per-call latency
    ax2.plot(sizes, [p.latency_ms for p in points], "s--", color="#dd8452", label="ms per batch")
    ax2.set_ylabel("ms per batch call")
    fig.legend(loc="upper left", bbox_to_anchor=(0.12, 0.88))
    fig.tight_layout()
    fig.savefig(path, dpi=100)


# END SOLUTION
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
    # BEGIN SOLUTION
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = ReportPaths(markdown=out / "report.md", json=out / "report.json",
                        plots={"latency_histogram": out / "latency_histogram.png",
                               "throughput": out / "throughput.png"})

    # Step 1: the JSON, straight from the dataclasses (samples_ms stays out: it can be long).
    lat = {k: v for k, v in dataclasses.asdict(latency).items() if k != "samples_ms"}
    lat["estimates"] = {f"p{q}": latency.percentile_is_estimate(q) for q in (90, 95, 99)}
    data = {
        "model": model_name,
        "environment": environment_info(),
        "latency": lat,
        "throughput": [dataclasses.asdict(p) for p in throughput],
        "memory": dataclasses.asdict(memory),
        "operators": [dataclasses.asdict(o) for o in operators],
        "devices": [dataclasses.asdict(d) for d in devices],
        "plots": {key: path.name for key, path in paths.plots.items()},
    }
    paths.json.write_text(json.dumps(_finite(data), indent=2, allow_nan=False) + "\n")

    # Step 2: the plots.
    _plot_latency(latency, paths.plots["latency_histogram"], f"{model_name}: latency of {latency.n_samples} calls")
    _plot_throughput(throughput, paths.plots["throughput"], f"{model_name}: throughput against batch size")

    # Step 3: the Markdown, for people.
    est = {q: " (estimate)" if latency.percentile_is_estimate(q) else "" for q in (90, 95, 99)}
    mib = 1024 * 1024
    lines = [
        f"# Performance report: {model_name}", "",
        f"Python {data['environment']['python']}, torch {data['environment']['torch']}, "
        f"{data['environment']['cpu_count']} CPUs, GPU: {data['environment']['cuda'] or 'none'}.", "",
        "## Latency", "",
        f"{latency.n_samples} timed calls. A percentile marked (estimate) had fewer samples than MLPerf "
        "LoadGen's minimum (64 for p90, 130 for p95, 662 for p99).", "",
        "| statistic | ms |", "| --- | --- |",
        f"| mean | {latency.mean_ms:.3f} |", f"| std | {latency.std_ms:.3f} |",
        f"| p50 | {latency.p50_ms:.3f} |", f"| p90{est[90]} | {latency.p90_ms:.3f} |",
        f"| p95{est[95]} | {latency.p95_ms:.3f} |", f"| p99{est[99]} | {latency.p99_ms:.3f} |",
        f"| min | {latency.min_ms:.3f} |", f"| max | {latency.max_ms:.3f} |",
        f"| CV (std/mean) | {latency.cv:.3f} |", "",
        "![latency histogram](latency_histogram.png)", "",
        "## Throughput", "",
        "| batch size | samples/s | ms per batch call |", "| --- | --- | --- |",
        *[f"| {p.batch_size} | {p.samples_per_s:,.1f} | {p.latency_ms:.3f} |" for p in throughput], "",
        "![throughput against batch size](throughput.png)", "",
        "## Memory", "",
        f"Measured on {memory.device}: baseline {memory.baseline_bytes / mib:,.1f} MiB, peak "
        f"{memory.peak_bytes / mib:,.1f} MiB, delta {memory.delta_bytes / mib:,.1f} MiB "
        f"({memory.delta_bytes:,} bytes).", "",
        "## Top operators (self time)", "",
        "| operator | self time (ms) | calls |", "| --- | --- | --- |",
        *[f"| `{o.name}` | {o.self_time_ms:.3f} | {o.calls} |" for o in operators], "",
        "## Devices", "",
        "| device | p50 (ms) | samples/s | note |", "| --- | --- | --- | --- |",
        *[f"| {d.device} | {_fmt(d.p50_ms, 3)} | {_fmt(d.samples_per_s, 1)} | "
          f"{'measured' if d.available else 'skipped: ' + d.reason} |" for d in devices], "",
    ]
    paths.markdown.write_text("\n".join(lines))
    return paths
    # END SOLUTION
    """ # BEGIN PROMPT
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
    """  # END PROMPT
