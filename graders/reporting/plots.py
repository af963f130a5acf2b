"""PNG plots for report.md, drawn with matplotlib's Agg renderer.

Figures are built with ``matplotlib.figure.Figure`` on an Agg canvas, never through ``pyplot``:
nothing is registered globally, so there is no figure to leak or close, and a notebook that calls
the reporting code keeps its own backend. matplotlib is imported lazily, so a broken matplotlib
install costs the plots (logged in report.md), never the grade.

* ``points.png``: points earned against the maximum, one bar per criterion, coloured by verdict.
* ``<criterion id, dots as _>.png``: for criteria whose ``details["samples"]`` maps a label to a
  list of numbers, histograms and box plots of those samples; threshold lines are drawn only when
  ``details["samples_unit"]`` equals the criterion's unit.
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from graders.records import CriterionResult, GradeRun
from graders.reporting._format import fmt_value, verdict_label

__all__ = ["VERDICT_COLORS", "plot_filename", "plot_points", "plot_samples", "write_plots"]

VERDICT_COLORS = {
    "pass": "#2e7d32",
    "fail": "#c62828",
    "inconclusive": "#ef8f00",
    "skipped": "#9e9e9e",
    "error": "#6a1b9a",
}
_SERIES_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")


def plot_filename(criterion_id: str) -> str:
    """``p1.latency_p50`` -> ``p1_latency_p50.png`` (anything unsafe in a file name becomes _)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", str(criterion_id)) + ".png"


def _new_figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


# ## Points chart ############################################################################

def plot_points(run: GradeRun, path: str | Path) -> Path:
    """Horizontal bars of points earned (coloured by verdict) over the maximum (grey outline)."""
    from matplotlib.patches import Patch

    crits = list(run.criteria)
    if not crits:
        raise ValueError("no criteria were graded")
    height = min(40.0, 1.4 + 0.32 * len(crits))
    fig = _new_figure(8.0, height)
    ax = fig.add_subplot(1, 1, 1)
    ys = list(range(len(crits)))
    maxes = [_finite(c.max_points) for c in crits]
    earned = [_finite(c.points) for c in crits]
    colors = [VERDICT_COLORS.get(c.verdict, "#000000") for c in crits]
    ax.barh(ys, maxes, color="#eeeeee", edgecolor="#9e9e9e", height=0.7)
    ax.barh(ys, earned, color=colors, height=0.7)
    for y, c, e, m in zip(ys, crits, earned, maxes):
        ax.text(max(e, m) + 0.1, y, f"{e:g}/{m:g} {verdict_label(c.verdict)}", va="center",
                fontsize=7)
    ax.set_yticks(ys)
    ax.set_yticklabels([str(c.id) for c in crits], fontsize=7)
    ax.invert_yaxis()  # table order, top to bottom
    top = max(maxes + earned + [1.0])
    ax.set_xlim(0, top * 1.35)
    ax.set_xlabel("points")
    ax.set_title(f"Phase {run.phase}: {run.points:g} / {run.max_points:g} points")
    present = [v for v in VERDICT_COLORS if any(c.verdict == v for c in crits)]
    ax.legend(handles=[Patch(color=VERDICT_COLORS[v], label=v) for v in present],
              loc="best", fontsize=7)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def _finite(x: Any) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return 0.0
    return v if math.isfinite(v) else 0.0


# ## Sample distributions #####################################################################

def _clean_samples(samples: Any) -> dict[str, list[float]]:
    """``{label: [finite floats]}``; raises with a readable reason when nothing is plottable."""
    if not isinstance(samples, dict):
        raise TypeError(f"details['samples'] is a {type(samples).__name__}, expected a dict "
                        "of label -> list of numbers")
    out: dict[str, list[float]] = {}
    for label, values in samples.items():
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            raise TypeError(f"samples[{label!r}] is a {type(values).__name__}, expected a list")
        vals = [float(v) for v in values]  # ValueError/TypeError on junk: logged by the caller
        vals = [v for v in vals if math.isfinite(v)]
        if vals:
            out[str(label)] = vals
    if not out:
        raise ValueError("details['samples'] holds no finite numbers")
    return out


def plot_samples(c: CriterionResult, path: str | Path) -> Path:
    """Histogram (top) and box plot (bottom) of ``c.details["samples"]``, sharing the x axis.

    Pass/full threshold lines (and the measured value) are drawn only when
    ``c.details.get("samples_unit") == c.unit``, i.e. when the samples are in the metric's unit.
    """
    series = _clean_samples(c.details.get("samples"))
    unit = c.details.get("samples_unit")
    same_unit = unit is not None and unit == c.unit

    fig = _new_figure(8.0, 5.0)
    ax_hist = fig.add_subplot(2, 1, 1)
    ax_box = fig.add_subplot(2, 1, 2, sharex=ax_hist)
    labels = list(series)
    for i, label in enumerate(labels):
        vals = series[label]
        bins = max(5, min(40, int(math.sqrt(len(vals))) + 1))
        ax_hist.hist(vals, bins=bins, alpha=0.55, label=f"{label} (n={len(vals)})",
                     color=_SERIES_COLORS[i % len(_SERIES_COLORS)])
    data = [series[k] for k in labels]
    try:  # matplotlib >= 3.10 names the orientation; older releases only know vert=
        ax_box.boxplot(data, orientation="horizontal")
    except TypeError:
        ax_box.boxplot(data, vert=False)
    ax_box.set_yticks(range(1, len(labels) + 1))
    ax_box.set_yticklabels(labels, fontsize=8)

    if same_unit:
        lines = [("pass", c.threshold_pass, "#ef8f00", "--"),
                 ("full", c.threshold_full, "#2e7d32", "--"),
                 ("measured", c.value, "#000000", "-")]
        for name, x, color, style in lines:
            x = _finite_or_none(x)
            if x is None:
                continue
            label = f"{name} {fmt_value(x, c.unit, ratio_decimal=name != 'measured')}"
            ax_hist.axvline(x, color=color, linestyle=style, linewidth=1.2, label=label)
            ax_box.axvline(x, color=color, linestyle=style, linewidth=1.2)
    ax_hist.legend(fontsize=7)
    ax_hist.set_ylabel("count")
    ax_box.set_xlabel(str(unit) if unit else "value")
    ax_hist.set_title(f"{c.id}: {verdict_label(c.verdict)}", fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def _finite_or_none(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


# ## All plots for one run ####################################################################

def write_plots(run: GradeRun, plots_dir: str | Path) -> tuple[dict[str, Path], list[str]]:
    """Draw every plot for ``run`` into ``plots_dir``; never raises for bad data.

    Returns:
        (plots, problems): ``plots`` maps "points" or a criterion id to the PNG written;
        ``problems`` holds one line per plot that could not be drawn, with the reason.
    """
    plots_dir = Path(plots_dir)
    plots: dict[str, Path] = {}
    problems: list[str] = []
    if run.criteria:
        try:
            plots["points"] = plot_points(run, plots_dir / "points.png")
        except Exception as exc:  # noqa: BLE001 - a plot never fails the grade
            problems.append(f"points.png: {type(exc).__name__}: {exc}")
    for c in run.criteria:
        if not isinstance(c.details, dict) or "samples" not in c.details:
            continue
        name = plot_filename(c.id)
        try:
            plots[c.id] = plot_samples(c, plots_dir / name)
        except Exception as exc:  # noqa: BLE001 - a plot never fails the grade
            problems.append(f"{name} ({c.id}): {type(exc).__name__}: {exc}")
    return plots, problems
