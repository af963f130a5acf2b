"""A static scan of a submission's source for what no honest submission needs.

Run by the runner (which never imports the learner's code) before grading. Every finding is reported to
the instructor in the grade's report and gradebook, with the file and line; none changes a verdict on its
own (a learner may have a good reason, and a flag is for a human to read). What the code actually does
while graded is watched at run time (``graders.tamper.audit`` / ``.integrity``).
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Finding", "scan_submission", "scan_source"]

_MODULE_RULES = {
    "graders": "imports the grader's own package",
    "gc": "imports gc (finding the grader's objects in memory)",
    "ctypes": "imports ctypes (raw memory access)",
    "socket": "uses the network", "urllib": "uses the network", "http": "uses the network",
    "requests": "uses the network", "httpx": "uses the network",
    "subprocess": "starts programs",
}
_CALL_RULES = {
    ("sys", "_getframe"): "walks the interpreter's frames (sys._getframe)",
    ("sys", "addaudithook"): "installs an audit hook", ("sys", "settrace"): "installs a tracer (sys.settrace)",
    ("sys", "setprofile"): "installs a profiler hook (sys.setprofile)",
    ("gc", "get_objects"): "searches the interpreter's objects (gc.get_objects)",
    ("gc", "get_referrers"): "searches the interpreter's objects (gc.get_referrers)",
    ("os", "system"): "runs shell commands", ("os", "sched_setaffinity"): "changes the CPU affinity",
}
_REFERENCE = re.compile(r"^phase\d+_\w+(\.\w+)*\.reference(\.|$)")
_CONFIG = {"backends", "config", "_dynamo", "_inductor", "flags"}  # settings a library documents, not patches
_PATCHED_MODULES = {"time", "torch", "np", "numpy", "ort", "onnxruntime", "builtins", "sys", "os", "F", "nn", "graders"}


@dataclass(frozen=True)
class Finding:
    """One thing the scan noticed: ``what`` in words, ``where`` as ``file:line``."""

    what: str
    where: str

    def to_dict(self) -> dict[str, str]:
        return {"severity": "flag", "what": f"source {self.what}", "where": self.where, "criterion": ""}


def _dotted(node: ast.AST) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return ""


def scan_source(text: str, filename: str) -> list[Finding]:
    """The findings in one file's source (a file that does not parse is reported, not raised)."""
    try:
        tree = ast.parse(text, filename=filename)
    except SyntaxError as e:
        return [Finding(f"does not parse ({e.msg})", f"{filename}:{e.lineno}")]
    found: list[Finding] = []

    def add(what: str, node: ast.AST) -> None:
        found.append(Finding(what, f"{filename}:{getattr(node, 'lineno', 0)}"))

    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for n in names:
                top = n.split(".")[0]
                if top in _MODULE_RULES:
                    add(_MODULE_RULES[top], node)
                if _REFERENCE.match(n):
                    add(f"imports a reference solution ({n})", node)
            if isinstance(node, ast.ImportFrom) and node.level and any(a.name == "reference" for a in node.names):
                add("imports a reference solution (relative import)", node)
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            rule = _CALL_RULES.get((node.value.id, node.attr))
            if rule:
                add(rule, node)
            elif node.value.id == "sys" and node.attr == "modules":
                add("reads or edits sys.modules", node)
        elif isinstance(node, (ast.Assign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                name = _dotted(t) if isinstance(t, ast.Attribute) else ""
                parts = name.split(".")
                if name and parts[0] in _PATCHED_MODULES and not _CONFIG.intersection(parts):
                    add(f"replaces {name} (monkey-patching a library the grader uses)", node)
        elif isinstance(node, ast.Call):
            fn = _dotted(node.func)
            if fn == "setattr" and node.args and _dotted(node.args[0]).split(".")[0] in _PATCHED_MODULES:
                add(f"replaces an attribute of {_dotted(node.args[0])} with setattr", node)
            elif fn in ("__import__", "importlib.import_module") and node.args and isinstance(node.args[0], ast.Constant) \
                    and "reference" in str(node.args[0].value):
                add(f"imports {node.args[0].value!r} dynamically", node)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            v = node.value
            if len(v) > 200 or any(c.isspace() for c in v):
                continue  # prose (a docstring), not a path or a module name
            if "/reference" in v or "reference/" in v or _REFERENCE.match(v):
                add(f"names a reference solution in a string ({v[:60]!r})", node)
            elif v.startswith("/") and any(v.startswith(p) for p in ("/autograder", "/etc", "/root", "/home", "/proc")):
                add(f"names a fixed system path ({v[:60]!r})", node)
    return found


def scan_submission(folders: list[Path], *, relative_to: Path | None = None, course_root: Path | None = None,
                    limit: int = 50) -> list[Finding]:
    """Scan every ``.py`` file under ``folders`` (``reference/`` and ``__pycache__`` skipped); at most ``limit``.

    With ``course_root`` (the grader's own copy of the course) and ``relative_to`` (the submission's root), a
    file identical to the course's own at the same path (a helper written in full, such as a part's
    ``workers.py``) is the course's code, not the learner's, and is not scanned.
    """
    found: list[Finding] = []
    for folder in folders:
        for f in sorted(Path(folder).rglob("*.py")):
            if "reference" in f.parts or "__pycache__" in f.parts:
                continue
            try:
                data = f.read_bytes()
            except OSError:
                continue
            if course_root is not None and relative_to is not None and f.is_relative_to(relative_to):
                ours = Path(course_root) / f.relative_to(relative_to)
                try:
                    if ours.resolve() != f.resolve() and ours.is_file() and ours.read_bytes() == data:
                        continue
                except OSError:
                    pass
            text = data.decode("utf-8", errors="replace")
            name = str(f.relative_to(relative_to)) if relative_to and f.is_relative_to(relative_to) else str(f)
            found += scan_source(text, name)
            if len(found) >= limit:
                return found[:limit]
    return found
