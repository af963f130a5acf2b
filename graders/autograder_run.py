"""Inside Gradescope's container: grade ``/autograder/submission``, write ``/autograder/results/results.json``.

``run_autograder`` (written by :mod:`graders.autograder`) runs ``python -m graders.autograder_run --phase N
[--part P]`` from ``/autograder/source`` once per submission, as root. Steps:

1. :func:`locate_upload` finds the learner's code in the upload: a copy of the repo (a ``phaseN_x/`` folder,
   at the top or a few folders down), the phase folder itself (``starter/`` or ``<part>/starter/``), or loose
   starter files (``loading.py`` ...). What it found goes at the top of the result's output.
2. :func:`lay_out` builds a fresh copy laid out as the grader expects (``work/submission/phaseN_x/...``): the
   course's own phase folder, then the learner's ``starter/`` files over the stubs. Only ``starter/`` code
   comes from the learner; a file the learner did not upload stays a stub (it scores 0, it never crashes).
3. ``python -m graders grade --phase N --submission <copy> --out <dir> [--child-user student]`` grades it;
   ``$AUTOGRADER_ARGS`` (e.g. ``"--task 1 --quick"``) is appended.
4. The grade's ``gradescope_results.json``, checked (:func:`results_problems`), replaces ``results.json``
   after grading has ended, whatever the learner's code wrote there. When grading could not run, a valid
   results.json with score 0 says why (:func:`fallback_results`): Gradescope is never left without one.

Environment: ``AUTOGRADER_ROOT`` (default ``/autograder``: tests simulate the layout in a temporary folder),
``AUTOGRADER_ARGS``, ``AUTOGRADER_CHILD_USER`` (default ``student``), ``AUTOGRADER_TIMEOUT_S`` (default none).
Only the standard library and :mod:`graders.course` are imported here, so a broken install still yields a
result.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from .course import Part, Phase, phase as course_phase

__all__ = ["ROOT_ENV", "Upload", "locate_upload", "lay_out", "syntax_errors", "fallback_results",
           "results_problems", "run", "main"]

ROOT_ENV = "AUTOGRADER_ROOT"
#: Folders never searched or copied from an upload.
_SKIP = {"__pycache__", "__MACOSX", ".git", ".venv", "venv", "node_modules", "site-packages", "reference"}
_MAX_DEPTH = 3
_OUTPUT_TAIL = 60   # lines of the grader's own output shown when grading could not run


@dataclass
class Upload:
    """Where the learner's code is: each part's folder (repo-relative) -> the upload's starter folder or files."""

    kind: str                                                      # what the upload looks like, in words
    starters: dict[str, Path] = field(default_factory=dict)        # part folder -> a starter/ folder
    files: dict[str, list[Path]] = field(default_factory=dict)     # part folder -> loose starter files
    notes: list[str] = field(default_factory=list)


# ## 1. Finding the learner's code -----------------------------------------------------------------

def _dirs(top: Path, name: str) -> list[Path]:
    """Folders called ``name`` under ``top`` (``top`` itself included), shallowest first, at most _MAX_DEPTH down."""
    found, level = [], [top]
    for _ in range(_MAX_DEPTH + 1):
        found += [d for d in level if d.name == name]
        level = sorted(c for d in level for c in _children(d)
                       if c.is_dir() and not c.is_symlink() and c.name not in _SKIP and not c.name.startswith("."))
    return found


def _children(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except OSError:   # unreadable: nothing the grader can use
        return []


def _py_files(folder: Path) -> list[Path]:
    """The regular .py files directly in ``folder``."""
    return [p for p in sorted(folder.glob("*.py")) if p.is_file() and not p.is_symlink()]


def _starter_names(source: Path, part: Part) -> set[str]:
    return {p.name for p in (source / part.folder / "starter").glob("*.py")}


def locate_upload(upload: Path, ph: Phase, parts: list[Part], source: Path) -> Upload:
    """Find the learner's ``starter/`` code for ``parts`` in ``upload`` (see the module docstring)."""
    upload = Path(upload)
    if not upload.is_dir() or not any(upload.iterdir()):
        return Upload(kind="an empty upload")
    top = ph.folder.split("/")[0]
    if found := _dirs(upload, top):
        phase_dir = found[0]
        repo = any((phase_dir.parent / f).exists() for f in ("graders", "pyproject.toml", "README.md", "Makefile"))
        where = phase_dir.relative_to(upload).as_posix()
        out = Upload(kind=f"{'a copy of the repo' if repo else 'the phase folder'} ({where}/)")
        for part in parts:
            rel = part.folder.split("/", 1)[1] if "/" in part.folder else ""
            starter = phase_dir / rel / "starter"
            if starter.is_dir():
                out.starters[part.folder] = starter
        if len(found) > 1:
            out.notes.append(f"several {top}/ folders in your upload: graded {where}/")
        return out
    starters = _dirs(upload, "starter")
    out = Upload(kind="the phase folder's parts (<part>/starter/)")
    for part in parts:
        own = [d for d in starters if part.name and d.parent.name == part.name]
        if own:
            out.starters[part.folder] = own[0]
        elif starters and len(parts) == 1:
            out.starters[part.folder] = starters[0]
            out.kind = f"a starter/ folder ({starters[0].relative_to(upload).as_posix()}/)"
    if out.starters:
        return out
    # files at the top of the upload, or one folder down (a zipped folder); the first of each name
    loose = list({p.name: p for p in reversed(
        _py_files(upload) + [p for d in sorted(_children(upload)) if d.is_dir() and not d.is_symlink()
                             and d.name not in _SKIP for p in _py_files(d)])}.values())
    loose.sort(key=lambda p: p.name)
    names = {part.folder: _starter_names(source, part) for part in parts}
    out = Upload(kind="loose starter files")
    for part in parts:
        others = set().union(*(n for f, n in names.items() if f != part.folder)) if len(parts) > 1 else set()
        mine = names[part.folder] - others - ({"__init__.py"} if len(parts) > 1 else set())
        files = [p for p in loose if p.name in mine]
        if files:
            out.files[part.folder] = files
    if not out.files:
        out.kind = "nothing the grader recognises"
    return out


# ## 2. The copy the grader grades ---------------------------------------------------------------

def _copy_tree(src: Path, dest: Path) -> list[str]:
    """Copy the regular files under ``src`` into ``dest`` (no links, no skipped folders); return their names."""
    copied = []
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP and not d.startswith("."))
        for fn in sorted(filenames):
            f = Path(dirpath) / fn
            if f.is_symlink() or not f.is_file() or fn.endswith(".pyc"):
                continue
            rel = f.relative_to(src)
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, dest / rel)
            copied.append(rel.as_posix())
    return copied


def lay_out(upload: Upload, ph: Phase, parts: list[Part], source: Path, dest: Path) -> list[str]:
    """Write ``dest/<phase folder>``: the course's phase folder, the learner's starter code over its stubs.

    Returns:
        One line per part saying which of its starter files came from the learner and which are stubs.
    """
    top = ph.folder.split("/")[0]
    if dest.exists():
        shutil.rmtree(dest)
    _copy_tree(source / top, dest / top)
    lines = []
    for part in parts:
        starter = dest / part.folder / "starter"
        stubs = sorted(p.name for p in starter.glob("*.py"))
        if part.folder in upload.starters:
            theirs = _copy_tree(upload.starters[part.folder], starter)
        else:
            theirs = []
            for f in upload.files.get(part.folder, []):
                shutil.copyfile(f, starter / f.name)
                theirs.append(f.name)
        filled = [s for s in stubs if s not in theirs]
        lines.append(f"{part.folder}/starter/: your files: {', '.join(theirs) or 'none'}"
                     + (f"; the course's stubs (score 0): {', '.join(filled)}" if filled else ""))
    for dirpath, dirnames, filenames in os.walk(dest):    # the grading child may run as another user
        os.chmod(dirpath, 0o755)
        for fn in filenames:
            os.chmod(Path(dirpath) / fn, 0o644)
    os.chmod(dest, 0o755)
    return lines


def syntax_errors(path: Path) -> list[str]:
    """``starter/loading.py line 3: invalid syntax`` for each .py file (``path`` or under it) that does not compile."""
    path = Path(path)
    files, base = ([path], path.parent) if path.is_file() else (sorted(path.rglob("*.py")), path.parent)
    errors = []
    for f in files:
        try:
            compile(f.read_bytes(), str(f), "exec", dont_inherit=True)
        except SyntaxError as e:
            errors.append(f"{f.relative_to(base).as_posix()} line {e.lineno}: {e.msg}")
        except ValueError as e:   # null bytes
            errors.append(f"{f.relative_to(base).as_posix()}: {e}")
    return errors


# ## 3-4. Grading and the results file ------------------------------------------------------------

def fallback_results(why: str, elapsed_s: float = 0.0) -> dict:
    """A valid Gradescope result with score 0 that says why grading could not run."""
    return {"score": 0.0, "execution_time": int(round(elapsed_s)), "output": why, "output_format": "text",
            "visibility": "visible", "stdout_visibility": "visible",
            "tests": [{"name": "Grading", "score": 0.0, "max_score": 0.0, "status": "failed", "output": why,
                       "output_format": "text", "visibility": "visible"}]}


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def results_problems(data) -> list[str]:
    """What makes ``data`` an unusable Gradescope result (empty when it is fine)."""
    if not isinstance(data, dict):
        return ["not a JSON object"]
    problems = [] if _number(data.get("score")) else ["score is not a number"]
    tests = data.get("tests", [])
    if not isinstance(tests, list):
        return [*problems, "tests is not a list"]
    for i, t in enumerate(tests):
        if not isinstance(t, dict) or not isinstance(t.get("name"), str):
            problems.append(f"tests[{i}] has no name")
        elif not (_number(t.get("score", 0)) and _number(t.get("max_score", 0))):
            problems.append(f"tests[{i}] score or max_score is not a number")
        elif t.get("status", "passed") not in ("passed", "failed"):
            problems.append(f"tests[{i}] status is {t.get('status')!r}")
    return problems


def _write_results(path: Path, data: dict) -> None:
    """Replace ``path`` atomically (a file the learner's code left there, even read-only, is replaced)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".results.", suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, ensure_ascii=False)
        fh.write("\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def _child_user_args(python: str, source: Path) -> tuple[list[str], str | None]:
    """``["--child-user", "student"]`` when running as root, the user exists and ``grade`` takes the flag."""
    if not _is_root():
        return [], None
    import pwd

    user = os.environ.get("AUTOGRADER_CHILD_USER", "student")
    try:
        pwd.getpwnam(user)
    except KeyError:
        return [], f"warning: no user {user!r}: the learner's code runs as root (did setup.sh run?)"
    helptext = subprocess.run([python, "-m", "graders", "grade", "--help"], cwd=source, capture_output=True,
                              text=True).stdout
    if "--child-user" not in helptext:
        return [], "warning: this grader has no --child-user: the learner's code runs as root"
    return ["--child-user", user], None


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (Linux /proc; empty elsewhere)."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").glob("[0-9]*"):
        try:
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(d.name))
    found, todo = [], [pid]
    while todo:
        kids = children.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def _grade(cmd: list[str], source: Path) -> tuple[int | None, str]:
    """Run the grade (in a session of its own) and return (exit code or None on timeout, its output).

    ``AUTOGRADER_TIMEOUT_S`` bounds it: past that the whole process group is killed.
    """
    limit = os.environ.get("AUTOGRADER_TIMEOUT_S")
    timeout = float(limit) if limit else None
    proc = subprocess.Popen(cmd, cwd=source, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        text, _ = proc.communicate(timeout=timeout)
        return proc.returncode, text
    except subprocess.TimeoutExpired:
        for pid in [proc.pid, *_descendants(proc.pid)]:   # the grading children run in sessions of their own
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        text, _ = proc.communicate()
        return None, f"{text}\nthe grader ran past AUTOGRADER_TIMEOUT_S={limit} s and was stopped"


def _harden(root: Path) -> None:
    """As root: nobody else may write the results folder."""
    if _is_root():
        results = root / "results"
        os.chown(results, 0, 0)
        os.chmod(results, 0o755)


def run(phase: int, part: str | None = None, *, root: Path | None = None) -> dict:
    """Grade the submission under ``root`` and write ``root/results/results.json``; return what was written."""
    t0 = time.monotonic()
    root = Path(root or os.environ.get(ROOT_ENV, "/autograder")).resolve()
    source, results = root / "source", root / "results" / "results.json"
    results.parent.mkdir(parents=True, exist_ok=True)
    results.unlink(missing_ok=True)
    _harden(root)
    header: list[str] = []
    try:
        ph = course_phase(phase)
        parts = [ph.part(part)] if part is not None else list(ph.parts)
        upload = locate_upload(root / "submission", ph, parts, source)
        work = root / "work"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        os.chmod(work, 0o755)
        header.append(f"Found in your upload: {upload.kind}.")
        header += upload.notes
        header += lay_out(upload, ph, parts, source, work / "submission")
        for where in [*upload.starters.values(), *(f for files in upload.files.values() for f in files)]:
            header += [f"Syntax error in your code: {e}" for e in syntax_errors(where)]
        out = work / "out"
        cmd = [sys.executable, "-m", "graders", "grade", "--phase", str(phase), *(["--part", part] if part else []),
               "--submission", str(work / "submission"), "--out", str(out)]
        user_args, warning = _child_user_args(sys.executable, source)
        if warning:
            print(warning, flush=True)
        cmd += user_args + shlex.split(os.environ.get("AUTOGRADER_ARGS", ""))
        print("$ " + shlex.join(cmd), flush=True)
        code, text = _grade(cmd, source)
        print(text, flush=True)
        graded = out / "gradescope_results.json"
        try:
            data = json.loads(graded.read_text(encoding="utf-8"))
            problems = results_problems(data)
            if _is_root() and graded.stat().st_uid != 0:     # the grader runs as root: this is someone else's
                problems.append(f"{graded.name} was not written by the grader")
        except FileNotFoundError:
            data, problems = None, [f"it wrote no {graded.name} (exit code {code})"]
        except (OSError, ValueError) as e:
            data, problems = None, [f"its {graded.name} is unreadable ({e})"]
        if problems:
            tail = "\n".join(text.strip().splitlines()[-_OUTPUT_TAIL:])
            data = fallback_results("\n".join([*header, "", "The grader could not grade this submission: "
                                               + "; ".join(problems) + ".", "", tail]), time.monotonic() - t0)
        else:
            data["output"] = "\n".join([*header, "", str(data.get("output", ""))])
    except Exception as e:  # noqa: BLE001 - whatever happens, Gradescope gets a result
        traceback.print_exc()
        data = fallback_results("\n".join([*header, f"The autograder failed: {type(e).__name__}: {e}",
                                           "This is not a problem with your code: tell your instructor."]),
                                time.monotonic() - t0)
    _write_results(results, data)
    print(f"wrote {results}: score {data['score']}", flush=True)
    return data


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m graders.autograder_run",
                                description="grade a Gradescope submission (run_autograder calls this)")
    p.add_argument("--phase", type=int, required=True)
    p.add_argument("--part", default=None)
    args = p.parse_args(argv)
    run(args.phase, args.part)
    return 0


if __name__ == "__main__":
    sys.exit(main())
