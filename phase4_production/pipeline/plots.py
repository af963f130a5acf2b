"""Figures and files a person looks at after a run: where the time went, how many streams fit, a JSON summary.

Helpers, written in full. The command line (``cli.py``) and the notebook call them with the rows of
``stage_summary`` (Task 4.6). Figures are drawn with matplotlib's ``Agg`` backend (no display needed) and
written as PNG; each function returns the path it wrote.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

from .types import PipelineReport

__all__ = ["plot_stage_times", "plot_capacity", "write_summary", "json_safe"]


def _pyplot():
    """matplotlib.pyplot on the Agg backend (no display)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def json_safe(value: Any) -> Any:
    """``value`` with NaN and infinities replaced by None, recursively, and numpy scalars made Python ones, so
    ``json.dumps`` writes standard JSON."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", None) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def plot_stage_times(rows: Sequence[Mapping[str, Any]], path: str | Path) -> Path:
    """A horizontal bar chart of each stage's busy seconds (left) and utilisation (right), stages top to bottom.

    Args:
        rows: ``stage_summary``'s rows: dicts with ``stage``, ``busy_s``, ``utilisation`` (0..1), ``threads``
            and ``share`` (0..1).
        path: the PNG to write (its folder is created).

    Returns:
        ``path`` as a :class:`Path`.

    Raises:
        ValueError: no rows, or a row without those keys.
    """
    rows = list(rows)
    need = ("stage", "busy_s", "utilisation", "threads", "share")
    if not rows or any(k not in r for r in rows for k in need):
        raise ValueError(f"plot_stage_times needs stage_summary rows with {need}, got {rows!r:.200}")
    plt = _pyplot()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    names = [f"{r['stage']} ({r['threads']} thr)" for r in rows][::-1]
    busy = [float(r["busy_s"]) for r in rows][::-1]
    util = [100.0 * float(r["utilisation"]) for r in rows][::-1]
    share = [100.0 * float(r["share"]) for r in rows][::-1]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 0.6 * len(rows) + 1.6), sharey=True)
    try:
        bars = ax1.barh(names, busy, color="tab:blue")
        for b, s in zip(bars, share):
            ax1.text(b.get_width(), b.get_y() + b.get_height() / 2, f" {s:.0f}%", va="center", fontsize=8)
        ax1.set_xlabel("busy seconds, all threads (label: share of all work)")
        ax1.set_xlim(0, max(busy + [1e-9]) * 1.25)
        ax2.barh(names, util, color=["tab:red" if u >= 90 else "tab:green" for u in util])
        ax2.set_xlim(0, 100)
        ax2.axvline(100, color="grey", lw=0.8, ls="--")
        ax2.set_xlabel("utilisation of the stage's threads (%)")
        fig.suptitle("Where the time goes, per stage")
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
    return path


def plot_capacity(points: Sequence[Mapping[str, Any]], path: str | Path, *, latency_bound_ms: float) -> Path:
    """p99 latency and drop rate against the number of live streams, with the latency bound drawn.

    Args:
        points: one dict per load tried: ``streams`` (int), ``p99_ms`` (end-to-end p99 latency, ms),
            ``drop_pct`` (frames dropped, % of frames released) and ``sustained`` (bool: the load met the
            bound). Any order; plotted by ``streams``.
        path: the PNG to write (its folder is created).
        latency_bound_ms: the p99 latency a sustained load must stay under, in ms (> 0).

    Returns:
        ``path`` as a :class:`Path`.

    Raises:
        ValueError: no points, a point without those keys, or ``latency_bound_ms`` <= 0.
    """
    pts = sorted(points, key=lambda p: p.get("streams", 0))
    need = ("streams", "p99_ms", "drop_pct", "sustained")
    if not pts or any(k not in p for p in pts for k in need):
        raise ValueError(f"plot_capacity needs points with {need}, got {list(points)!r:.200}")
    if not latency_bound_ms > 0:
        raise ValueError(f"latency_bound_ms must be > 0, got {latency_bound_ms!r}")
    plt = _pyplot()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = [int(p["streams"]) for p in pts]
    p99 = [float(p["p99_ms"]) for p in pts]
    drop = [float(p["drop_pct"]) for p in pts]
    ok = [bool(p["sustained"]) for p in pts]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    try:
        ax1.plot(n, p99, color="tab:blue", lw=1)
        ax1.scatter([x for x, o in zip(n, ok) if o], [y for y, o in zip(p99, ok) if o], color="tab:green",
                    label="sustained", zorder=3)
        ax1.scatter([x for x, o in zip(n, ok) if not o], [y for y, o in zip(p99, ok) if not o], color="tab:red",
                    marker="x", label="not sustained", zorder=3)
        ax1.axhline(latency_bound_ms, color="grey", ls="--", label=f"bound {latency_bound_ms:g} ms")
        ax1.set_xlabel("live streams")
        ax1.set_ylabel("p99 latency (ms)")
        ax1.legend(fontsize=8)
        ax2.bar(n, drop, color=["tab:green" if o else "tab:red" for o in ok])
        ax2.set_xlabel("live streams")
        ax2.set_ylabel("frames dropped (%)")
        best = max((x for x, o in zip(n, ok) if o), default=None)
        fig.suptitle("Capacity: " + (f"{best} streams sustained" if best is not None else "no load sustained"))
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
    return path


def write_summary(report: PipelineReport, rows: Sequence[Mapping[str, Any]], path: str | Path, *,
                  extra: Mapping[str, Any] | None = None) -> Path:
    """Write a run's summary as JSON: ``report.to_json()``, then ``"stage_summary": rows``, then ``extra``'s keys.

    Args:
        report: the run's :class:`PipelineReport`.
        rows: ``stage_summary(report)`` (may be empty when it could not be computed).
        path: the JSON file to write (its folder is created).
        extra: more top-level keys (the command line adds per-stream latency and event counts).

    Returns:
        ``path`` as a :class:`Path`. NaN (a stage that finished nothing) is written as ``null``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = dict(report.to_json())
    data["stage_summary"] = [dict(r) for r in rows]
    data.update(extra or {})
    path.write_text(json.dumps(json_safe(data), indent=2) + "\n", encoding="utf-8")
    return path
