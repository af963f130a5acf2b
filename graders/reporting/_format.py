"""Shared text helpers for every report writer: numbers, units, targets, counts, JSON safety.

All writers (console, results.json, Gradescope, report.md) render a criterion the same way, so the
learner sees the same "1.84x" and "≥ 2.0x (full 3.0x)" wherever they look. Nothing here raises on
odd input: ``None`` renders as "—", NaN as "nan", infinities as "inf"/"-inf".
"""
from __future__ import annotations

import math
import os
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from graders.records import VERDICTS, CriterionResult, GradeRun

__all__ = [
    "DASH",
    "EXIT_MEANINGS",
    "INCONCLUSIVE_NOTE",
    "atomic_write_text",
    "count_verdicts",
    "fmt_number",
    "fmt_points",
    "fmt_target",
    "fmt_value",
    "fingerprint_items",
    "needs_next_step",
    "next_step_text",
    "is_partial",
    "fingerprint_line",
    "json_safe",
    "names_guide",
    "run_label",
    "totals_line",
    "truncate",
    "verdict_label",
    "wrap_text",
]

DASH = "—"

#: What each exit code means, in the words a learner reads below the totals.
EXIT_MEANINGS = {
    0: "every required criterion passed (or was skipped with a reason)",
    1: "some required criterion failed or stayed inconclusive",
    2: "the grader itself could not run (not your fault; see the grader errors)",
}

INCONCLUSIVE_NOTE = (
    "Inconclusive means the machine was too noisy to decide (no points either way); the figures "
    "are in the report. Re-run on a quieter machine: close other programs, plug in a laptop."
)

_SIGNS = {"higher": "≥", "lower": "≤", "equal": "="}
# (verdict, label in the totals line)
_COUNT_WORDS = (
    ("pass", "passed"),
    ("fail", "failed"),
    ("inconclusive", "inconclusive"),
    ("skipped", "skipped"),
    ("error", "error"),
)


# ## Numbers ################################################################################

def _as_float(x: Any) -> float | None:
    """``x`` as a float, or None when it is None or not a number."""
    if x is None or isinstance(x, bool):
        return None if x is None else float(x)
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def fmt_number(x: Any, sig: int = 3) -> str:
    """A number with ``sig`` significant digits, trailing zeros dropped.

    Moderate magnitudes are written out (``12.3``, ``0.0123``, ``4096``); very small or very large
    ones use a compact exponent (``1e-4``, ``1.23e+7`` -> ``1.23e7``). None -> "—".
    """
    v = _as_float(x)
    if v is None:
        return DASH if x is None else str(x)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if v == 0:
        return "0"
    mag = math.floor(math.log10(abs(v)))
    if -3 <= mag < 6:
        decimals = max(0, sig - 1 - mag)
        s = f"{v:.{decimals}f}"
        if "." in s:
            s = s.rstrip("0").rstrip(".")
        return s
    mant, _, exp = f"{v:.{sig - 1}e}".partition("e")
    if "." in mant:
        mant = mant.rstrip("0").rstrip(".")
    return f"{mant}e{int(exp)}"


def fmt_points(x: Any) -> str:
    """Points as ``7.5`` / ``10`` (at most two decimals)."""
    v = _as_float(x)
    if v is None:
        return DASH
    if not math.isfinite(v):
        return fmt_number(v)
    s = f"{round(v, 2):.2f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def _fmt_bytes(v: float) -> str:
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if abs(v) >= scale:
            return f"{fmt_number(v / scale)} {unit}"
    return f"{fmt_number(v)} B"


def fmt_value(x: Any, unit: str, *, ratio_decimal: bool = False) -> str:
    """A value with its unit: ``1.84x``, ``12.3 ms``, ``10%``, ``512 MiB``, ``0.87``.

    ``ratio_decimal`` keeps one decimal on whole ratios (``2.0x``) as thresholds are usually written.
    """
    v = _as_float(x)
    if v is None:
        return DASH if x is None else str(x)
    if not math.isfinite(v):
        return fmt_number(v)
    unit = unit or ""
    if unit == "bytes":
        return _fmt_bytes(v)
    s = fmt_number(v)
    if unit == "x":
        if ratio_decimal and "." not in s and "e" not in s:
            s += ".0"
        return s + "x"
    if unit == "%":
        return s + "%"
    return f"{s} {unit}" if unit else s


def fmt_target(c: CriterionResult) -> str:
    """The threshold as a learner reads it: ``≥ 2.0x (full 3.0x)``, ``≤ 1e-4``; "—" when none."""
    sign = _SIGNS.get(c.better, c.better or "")
    tp, tf = _as_float(c.threshold_pass), _as_float(c.threshold_full)
    if tp is None and tf is None:
        return DASH
    if tp is None:
        return f"full {sign} {fmt_value(tf, c.unit, ratio_decimal=True)}".replace("  ", " ")
    s = f"{sign} {fmt_value(tp, c.unit, ratio_decimal=True)}".strip()
    if tf is not None and tf != tp:
        s += f" (full {fmt_value(tf, c.unit, ratio_decimal=True)})"
    return s


def names_guide(text: str, guide: str) -> bool:
    """Whether ``text`` already points at ``guide``: the full path, its #anchor, or its file name."""
    if not text or not guide:
        return False
    file_part, _, anchor = guide.partition("#")
    key = anchor or file_part.replace("\\", "/").rsplit("/", 1)[-1]
    return guide in text or bool(key and key in text)


def is_partial(c: CriterionResult) -> bool:
    """A pass that earned less than its points: the learner can still reach full marks."""
    p, m = _as_float(c.points), _as_float(c.max_points)
    return c.verdict == "pass" and p is not None and m is not None and p < m - 1e-9


def needs_next_step(c: CriterionResult) -> bool:
    """Whether "What to do next" lists ``c``: not passed (and not skipped), or passed short of full marks."""
    return c.verdict not in ("pass", "skipped") or is_partial(c)


def next_step_text(c: CriterionResult) -> str:
    """What the learner should do about ``c``: its hint (for a partial pass, how to reach full marks), with
    the guide section appended unless the hint already names it; "" when there is nothing to do.

    A partial pass without a hint still says where full marks start and what was measured.
    """
    if not needs_next_step(c):
        return ""
    hint = " ".join(str(c.hint or "").split())
    if not hint and is_partial(c):
        full = _as_float(c.threshold_full)
        where = (f"full marks at {_SIGNS.get(c.better, '')} {fmt_value(full, c.unit, ratio_decimal=True)}"
                 if full is not None else "full marks need a better value")
        hint = (f"{fmt_points(c.points)}/{fmt_points(c.max_points)}: {where.replace('  ', ' ')}, "
                f"measured {fmt_value(c.value, c.unit)}.")
    if not hint and c.verdict == "fail" and c.message:
        hint = " ".join(str(c.message).split())
    if c.guide and not names_guide(hint, c.guide):
        hint = f"{hint} (guide: {c.guide})" if hint else f"see {c.guide}"
    return hint


def verdict_label(verdict: str) -> str:
    """``pass`` -> ``PASS``; unknown verdicts are shown as given, upper-cased."""
    return str(verdict).upper()


def truncate(text: Any, width: int) -> str:
    """``text`` on one line, cut to ``width`` characters with a trailing "…", at a word boundary.

    A cut never splits a word unless the first word alone is longer than ``width``.
    """
    s = " ".join(str(text if text is not None else "").split())
    if width <= 0:
        return ""
    if len(s) <= width:
        return s
    head = s[: max(0, width - 1)]
    space = head.rfind(" ")
    if space > 0 and s[len(head)] != " ":
        head = head[:space]
    return head.rstrip(" ,;:") + "…"


#: Where a word too long for its line may break, strongest first: after a dot, slash or anchor, else
#: after other punctuation.
_BREAK_AFTER = ("./#", "_-:,;=&?")


def _split_token(token: str, width: int) -> list[str]:
    """A word longer than ``width`` cut into pieces after punctuation (``p2.compilation.`` /
    ``compile_speedup_cuda``); only a run with no punctuation at all is cut at ``width``."""
    pieces = []
    while len(token) > width:
        cuts = [max((i + 1 for i, ch in enumerate(token[:width]) if ch in marks), default=0)
                for marks in _BREAK_AFTER]
        # the strongest mark that leaves a third of the line used, else any mark, else the width
        cut = next((c for c in cuts if c >= max(1, width // 3)), max(cuts)) or width
        pieces.append(token[:cut])
        token = token[cut:]
    return pieces + ([token] if token else [])


def wrap_text(text: Any, width: int) -> list[str]:
    """``text`` wrapped into lines of at most ``width`` characters, every character kept.

    Lines break between words; a word that alone is longer than ``width`` (an id, a path) breaks after
    its punctuation. Nothing is ever cut off or replaced by "…". Empty text gives ``[""]``.
    """
    width = max(1, int(width))
    lines: list[str] = []
    line = ""
    for word in str(text if text is not None else "").split():
        if len(word) > width:  # too long for any line: whole lines of its pieces, the rest continues
            if line:
                lines.append(line)
            *whole, line = _split_token(word, width)
            lines += whole
        elif line and len(line) + 1 + len(word) <= width:
            line += " " + word
        else:
            if line:
                lines.append(line)
            line = word
    return [*lines, line] if line or not lines else lines


# ## Totals ################################################################################

def count_verdicts(run: GradeRun) -> dict[str, int]:
    """How many criteria ended with each verdict (every verdict present, zeros included)."""
    counts = Counter(c.verdict for c in run.criteria)
    return {v: counts.get(v, 0) for v in VERDICTS}


def run_label(run: GradeRun) -> str:
    """``Phase 1 (impl starter, profile cpu)``, with ``, quick`` in quick mode."""
    extra = ", quick" if run.quick else ""
    return f"Phase {run.phase} (impl {run.impl}, profile {run.profile}{extra})"


def totals_line(run: GradeRun) -> str:
    """``Phase 1 (...): 42.5 / 110 points — 5 passed, 3 failed, 1 inconclusive, 2 skipped, 0 errors``."""
    counts = count_verdicts(run)
    parts = []
    for verdict, word in _COUNT_WORDS:
        n = counts.get(verdict, 0)
        parts.append(f"{n} {word}{'s' if verdict == 'error' and n != 1 else ''}")
    return (f"{run_label(run)}: {fmt_points(run.points)} / {fmt_points(run.max_points)} points "
            f"{DASH} " + ", ".join(parts))


# ## Machine fingerprint #####################################################################

def _fmt_isa(isa: Any, limit: int | None) -> str:
    flags = isa.split() if isinstance(isa, str) else [str(f) for f in (isa or [])]
    if not flags:
        return "?"
    if limit is not None and len(flags) > limit:
        return " ".join(flags[:limit]) + f" +{len(flags) - limit} more"
    return " ".join(flags)


def fingerprint_line(fp: dict[str, Any] | None) -> str:
    """One line: CPU model, cores, ISA flags, GPU, library versions. Missing keys read "?"."""
    fp = fp or {}
    gpu = fp.get("gpu") or "none"
    libs = ", ".join(f"{k} {fp.get(k) or '?'}" for k in ("python", "torch", "onnxruntime"))
    return (f"Machine: {fp.get('cpu_model') or '?'} | {fp.get('cores', '?')} cores | "
            f"ISA {_fmt_isa(fp.get('isa'), 10)} | GPU {gpu} | {libs}")


def fingerprint_items(fp: dict[str, Any] | None) -> list[tuple[str, str]]:
    """Every fingerprint entry as (key, text), the well-known keys first."""
    fp = dict(fp or {})
    order = ["cpu_model", "cores", "isa", "gpu", "python", "torch", "onnxruntime"]
    keys = [k for k in order if k in fp] + sorted(k for k in fp if k not in order)
    out = []
    for k in keys:
        v = fp[k]
        if k == "isa":
            text = _fmt_isa(v, None)
        elif isinstance(v, (list, tuple)):
            text = ", ".join(str(i) for i in v)
        elif v is None:
            text = "none" if k == "gpu" else DASH
        elif isinstance(v, float):
            text = fmt_number(v)
        else:
            text = str(v)
        out.append((str(k), text))
    return out


# ## JSON and files ##########################################################################

def json_safe(obj: Any) -> Any:
    """``obj`` as plain JSON data: NaN/inf -> None, numpy/torch values -> Python, Paths -> str.

    Anything else that JSON cannot hold becomes its ``str``. The result always passes
    ``json.dumps(..., allow_nan=False)``.
    """
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if hasattr(obj, "tolist"):  # numpy arrays and scalars, torch tensors
        try:
            return json_safe(obj.tolist())
        except Exception:  # noqa: BLE001 - fall back to text
            pass
    return str(obj)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file, so readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
