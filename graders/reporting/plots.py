"""PNG plots for report.md, drawn with matplotlib's Agg renderer.

Figures are built with ``matplotlib.figure.Figure`` on an Agg canvas, never through ``pyplot``:
nothing is registered globally, so there is no figure to leak or close, and a notebook that calls
the reporting code keeps its own backend. matplotlib is imported lazily, so a broken matplotlib
install costs the plots (logged in report.md), never the grade.

* ``points.png``: points earned against the maximum, one bar per criterion, coloured by verdict.
* ``<criterion id, dots as _>.png`` from ``details["curve"]`` (:func:`plot_curve`: a capacity curve) or
  ``details["picture"]`` (:func:`write_picture`: an annotated frame the grader drew), or, for criteria
  whose ``details["samples"]`` maps a label to a list of numbers, histograms and box plots of those
  samples (:func:`sample_plot_layout` decides what
  is drawn):

  - the pass / full-marks threshold lines and the measured value, when ``details["samples_unit"]``
    equals the criterion's unit (a latency criterion graded in ms);
  - every entry of ``details["sample_marks"]`` = ``{label: value in samples_unit}`` as a labelled
    vertical line, for a criterion graded in another unit than its samples (a bound graded in % of
    itself, its samples in ms: ``{"bound": 50.3, "full marks (60 % of bound)": 30.2}``);
  - an x axis that always holds every sample, mark and threshold line, logarithmic when the positive
    values span more than ``LOG_DECADES`` decades (submit() times from microseconds to a stall).

``write_plots`` removes PNGs left in ``plots/`` by an earlier grade that this one did not draw, so a
report folder graded again never shows another run's plots.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graders.records import CriterionResult, GradeRun
from graders.reporting._format import fmt_value, verdict_label, wrap_text

__all__ = ["LOG_DECADES", "VERDICT_COLORS", "SampleLayout", "plot_curve", "plot_filename", "plot_points",
           "plot_samples", "sample_plot_layout", "write_picture", "write_plots"]

VERDICT_COLORS = {
    "pass": "#2e7d32",
    "fail": "#c62828",
    "inconclusive": "#ef8f00",
    "skipped": "#9e9e9e",
    "error": "#6a1b9a",
}
_SERIES_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")
#: Colours and line styles of the ``sample_marks`` lines, in order (distinct from the threshold lines).
_MARK_STYLES = (("#6a1b9a", "-."), ("#ef8f00", ":"), ("#2e7d32", ":"), ("#00838f", "-."), ("#795548", ":"))
#: A positive x range wider than this many decades is drawn on a log axis.
LOG_DECADES = 2.0


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


@dataclass
class SampleLayout:
    """What :func:`plot_samples` draws for one criterion, decided before anything is drawn.

    ``lines`` are ``(legend label, x, colour, line style)`` in samples_unit; ``xlim`` holds every sample
    and line with a margin; ``log_x`` is true when the positive values span more than ``LOG_DECADES``.
    """

    series: dict[str, list[float]]
    unit: str | None
    lines: list[tuple[str, float, str, str]] = field(default_factory=list)
    log_x: bool = False
    xlim: tuple[float, float] = (0.0, 1.0)


def _clean_marks(marks: Any) -> dict[str, float]:
    """``{label: finite float}`` from ``details["sample_marks"]``; non-finite values are left out."""
    if marks is None:
        return {}
    if not isinstance(marks, dict):
        raise TypeError(f"details['sample_marks'] is a {type(marks).__name__}, expected a dict "
                        "of label -> number in samples_unit")
    out = {}
    for label, v in marks.items():
        x = _finite_or_none(v)
        if x is None and not (isinstance(v, (int, float)) or v is None):
            raise TypeError(f"sample_marks[{label!r}] is a {type(v).__name__}, expected a number")
        if x is not None:
            out[str(label)] = x
    return out


def _x_range(values: list[float], log_x: bool) -> tuple[float, float]:
    """The axis range holding ``values`` with a 5 % margin each side (of decades on a log axis)."""
    lo, hi = min(values), max(values)
    if log_x:
        a, b = math.log10(lo), math.log10(hi)
        pad = max(0.05 * (b - a), 0.05)
        return 10 ** (a - pad), 10 ** (b + pad)
    pad = 0.05 * (hi - lo) or max(abs(hi) * 0.05, 0.5)
    return lo - pad, hi + pad


def sample_plot_layout(c: CriterionResult) -> SampleLayout:
    """Decide the series, the vertical lines, the axis scale and range of ``c``'s sample plot.

    Raises TypeError/ValueError (with the reason) when ``details["samples"]`` or
    ``details["sample_marks"]`` cannot be plotted.
    """
    series = _clean_samples(c.details.get("samples"))
    unit = c.details.get("samples_unit")
    unit = None if unit is None else str(unit)
    lines: list[tuple[str, float, str, str]] = []
    if unit is not None and unit == c.unit:
        for name, x, color, style in (("pass", c.threshold_pass, "#ef8f00", "--"),
                                      ("full", c.threshold_full, "#2e7d32", "--"),
                                      ("measured", c.value, "#000000", "-")):
            x = _finite_or_none(x)
            if x is not None:
                lines.append((f"{name} {fmt_value(x, c.unit, ratio_decimal=name != 'measured')}", x, color, style))
    for i, (label, x) in enumerate(_clean_marks(c.details.get("sample_marks")).items()):
        color, style = _MARK_STYLES[i % len(_MARK_STYLES)]
        lines.append((f"{label}: {fmt_value(x, unit or '')}", x, color, style))
    values = [v for vals in series.values() for v in vals] + [x for _, x, _, _ in lines]
    positive = [v for v in values if v > 0]
    log_x = (len(positive) == len(values) and min(positive) > 0
             and math.log10(max(positive) / min(positive)) > LOG_DECADES)
    return SampleLayout(series=series, unit=unit, lines=lines, log_x=log_x, xlim=_x_range(values, log_x))


def plot_samples(c: CriterionResult, path: str | Path) -> Path:
    """Histogram (top) and box plot (bottom) of ``c.details["samples"]``, sharing the x axis.

    Threshold lines, the measured value and ``details["sample_marks"]`` are drawn as labelled
    vertical lines; see :func:`sample_plot_layout` for which, and for the axis scale and range.
    """
    layout = sample_plot_layout(c)
    series = layout.series

    fig = _new_figure(8.0, 5.0)
    ax_hist = fig.add_subplot(2, 1, 1)
    ax_box = fig.add_subplot(2, 1, 2, sharex=ax_hist)
    labels = list(series)
    for i, label in enumerate(labels):
        vals = series[label]
        n_bins = max(5, min(40, int(math.sqrt(len(vals))) + 1))
        lo, hi = min(vals), max(vals)
        if layout.log_x and hi > lo:  # equal widths on the log axis
            bins: Any = [lo * (hi / lo) ** (k / n_bins) for k in range(n_bins + 1)]
        else:
            bins = n_bins
        ax_hist.hist(vals, bins=bins, alpha=0.55, label=_wrapped(f"{label} (n={len(vals)})", 60),
                     color=_SERIES_COLORS[i % len(_SERIES_COLORS)])
    data = [series[k] for k in labels]
    try:  # matplotlib >= 3.10 names the orientation; older releases only know vert=
        ax_box.boxplot(data, orientation="horizontal")
    except TypeError:
        ax_box.boxplot(data, vert=False)
    ax_box.set_yticks(range(1, len(labels) + 1))
    ax_box.set_yticklabels([_wrapped(label, 24) for label in labels], fontsize=8)

    for label, x, color, style in layout.lines:
        ax_hist.axvline(x, color=color, linestyle=style, linewidth=1.2, label=_wrapped(label, 60))
        ax_box.axvline(x, color=color, linestyle=style, linewidth=1.2)
    if layout.log_x:
        ax_hist.set_xscale("log")
    ax_hist.set_xlim(*layout.xlim)
    ax_hist.legend(fontsize=7)
    ax_hist.set_ylabel("count")
    xlabel = layout.unit or "value"
    ax_box.set_xlabel(xlabel + (" (log scale)" if layout.log_x else ""))
    ax_hist.set_title(f"{c.id}: {verdict_label(c.verdict)}", fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def _wrapped(text: str, width: int) -> str:
    """A label on lines of about ``width`` characters, so a long one does not squeeze the axes."""
    return "\n".join(wrap_text(text, width))


def _finite_or_none(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


# ## All plots for one run ####################################################################

def plot_curve(c: CriterionResult, path: str | Path) -> Path:
    """Line plots of ``c.details["curve"]`` = ``{"x": [...], "x_label": str, "series": {label: [...]},
    "bound": value}``: one panel per series against x, the bound drawn on the first (a capacity curve:
    p99 latency and drops against the number of streams)."""
    curve = c.details["curve"]
    xs = [float(v) for v in curve["x"]]
    series = {str(k): [_finite(v) for v in vs] for k, vs in dict(curve["series"]).items()}
    if not xs or not series or any(len(v) != len(xs) for v in series.values()):
        raise ValueError("details['curve'] needs x and series of the same length")
    fig = _new_figure(7.0, 2.2 + 1.8 * len(series))
    axes = [fig.add_subplot(len(series), 1, i + 1) for i in range(len(series))]
    for i, (ax, (label, ys)) in enumerate(zip(axes, series.items())):
        ax.plot(xs, ys, "o-", color=_SERIES_COLORS[i % len(_SERIES_COLORS)])
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        if i == 0 and curve.get("bound") is not None:
            ax.axhline(float(curve["bound"]), color=VERDICT_COLORS["fail"], ls="--", label=f"bound {curve['bound']:g}")
            ax.legend(loc="upper left", fontsize=8)
    axes[-1].set_xlabel(str(curve.get("x_label", "")))
    axes[0].set_title(_wrapped(f"{c.id}: {c.title}", 80), fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def write_picture(c: CriterionResult, path: str | Path) -> Path:
    """Write ``c.details["picture"]`` (a base64 PNG the grader made: an annotated frame) as ``path``."""
    import base64

    data = base64.b64decode(str(c.details["picture"]), validate=True)
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("details['picture'] is not a PNG")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


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
        if not isinstance(c.details, dict):
            continue
        draw = next((fn for key, fn in (("samples", plot_samples), ("curve", plot_curve), ("picture", write_picture))
                     if key in c.details), None)
        if draw is None:
            continue
        name = plot_filename(c.id)
        try:
            plots[c.id] = draw(c, plots_dir / name)
        except Exception as exc:  # noqa: BLE001 - a plot never fails the grade
            problems.append(f"{name} ({c.id}): {type(exc).__name__}: {exc}")
    _remove_stale(plots_dir, plots.values())
    return plots, problems


def _remove_stale(plots_dir: Path, drawn) -> None:
    """Delete the PNGs in ``plots_dir`` this grade did not draw (left by an earlier grade into the same
    folder: another task's criteria, or a plot that could not be drawn this time). Only ``*.png``."""
    keep = {Path(p).name for p in drawn}
    if not plots_dir.is_dir():
        return
    for old in plots_dir.glob("*.png"):
        if old.name not in keep and old.is_file():
            try:
                old.unlink()
            except OSError:  # read-only or vanished: a stale plot never fails the grade
                pass
