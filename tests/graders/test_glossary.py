"""Every figure a criterion can put in report.md's key figures has a sentence in the glossary.

The reference grades in ``tests/course/test_grading.py`` check the figures a real run reports; this
test reads the graders' source instead (no grading, a second): every string key of a ``details`` dict
(``details={...}``, ``details = {...}``, ``details[...] = ``, ``details.update(...)``, a ``*details``
helper's returned dict, f-string keys as ``*`` patterns) must be explained by
:mod:`graders.reporting.glossary`.
"""
from __future__ import annotations

import ast
from pathlib import Path

from graders.course import REPO_ROOT
from graders.reporting.glossary import GLOSSARY, PATTERNS, explain, unexplained

SOURCES = [REPO_ROOT / "graders" / "harness", *sorted((REPO_ROOT / "graders").glob("phase*"))]
#: Keys that are never shown as figures (raw samples are plotted, not tabled).
NOT_FIGURES = {"samples"}


def _key(node) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):  # f"bs{bs}_yours_sps" -> "bs*_yours_sps"
        return "".join(v.value if isinstance(v, ast.Constant) else "*" for v in node.values)
    return None


def _is_details(node) -> bool:
    return isinstance(node, ast.Name) and "details" in node.id.lower()


def _dict_keys(node) -> list[str]:
    if isinstance(node, ast.Dict):
        return [k for k in map(_key, (k for k in node.keys if k is not None)) if k]
    if isinstance(node, ast.DictComp):
        return [k] if (k := _key(node.key)) else []
    return []


def details_keys(path: Path) -> set[str]:
    """String keys of the ``details`` dicts built in ``path``."""
    keys: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.keyword) and node.arg == "details":
            keys.update(_dict_keys(node.value))
        elif isinstance(node, ast.Assign):
            for t in node.targets:
                for target in (t.elts if isinstance(t, ast.Tuple) else [t]):
                    if _is_details(target):
                        keys.update(_dict_keys(node.value))
                    elif isinstance(target, ast.Subscript) and _is_details(target.value) and (k := _key(target.slice)):
                        keys.add(k)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "update" \
                and _is_details(node.func.value):
            for arg in node.args:
                keys.update(_dict_keys(arg))
            keys.update(kw.arg for kw in node.keywords if kw.arg)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and "details" in node.name:
            for ret in ast.walk(node):
                if isinstance(ret, ast.Return) and ret.value is not None:
                    keys.update(_dict_keys(ret.value))
    return keys - NOT_FIGURES


def test_every_details_key_in_the_graders_has_a_glossary_entry():
    found = {}
    for src in SOURCES:
        for path in sorted(src.rglob("*.py")):
            for key in details_keys(path):
                found.setdefault(key, path.relative_to(REPO_ROOT).as_posix())
    assert len(found) > 100, "the scan found almost nothing: has the way graders build details changed?"
    missing = {k: found[k] for k in unexplained(found)}
    assert not missing, ("figures with no sentence in graders/reporting/glossary.py (name: where it is built): "
                         f"{missing}")


def test_glossary_entries_are_one_sentence_with_content():
    for name, text in {**GLOSSARY, **PATTERNS}.items():
        assert text.strip() and text.rstrip().endswith((".", ")")), name
        assert len(text) < 260, name


def test_lookup_order_exact_pattern_parent_child():
    assert explain("rss_growth_mb") == ("rss_growth_mb", GLOSSARY["rss_growth_mb"])
    assert explain("eager_median_ms")[0] == "*_median_ms"
    assert explain("error_pct[signed int8]")[0] == "error_pct[*]"
    assert explain("checks.drain=True leaves no thread")[0] == "checks"   # parent explains its children
    assert explain("cpu/bfloat16.supported")[0] == "supported"            # else the child's own entry
    assert explain("no_such_figure") is None and explain("no.such") is None
