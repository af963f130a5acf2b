"""Build the Gradescope autograder bundle of one phase (or part): ``make gradescope PHASE=N [PART=P] [DEST=x.zip]``.

Instructors who outgrow one machine grade in Gradescope's per-submission containers. This module writes
the zip that Gradescope's "Programming Assignment" autograder takes (its documented layout: the zip is
unpacked to ``/autograder/source``; ``setup.sh`` runs once, as root, when Gradescope builds the image;
``run_autograder`` runs as root once per submission, reads ``/autograder/submission`` and must write
``/autograder/results/results.json``).

What the zip holds (:func:`bundle_files`): at its root ``setup.sh`` and ``run_autograder``, then the course
source the grader needs: ``graders/``, every phase folder (guides, ``EXPECTED_OUTCOMES.md``, the part
packages with their ``starter/`` stubs), ``datasets/`` (the data and model generators), ``pyproject.toml``
and ``README.md`` (pip needs both). Never a ``reference/`` folder, never the tests or notebooks: the file
list is the learner copy's (:func:`graders.release.release_files`), and the staged bundle must pass
:func:`graders.release.check_release` (no reference banner, marker, path or function body) before
anything is written.

How to use it:

1. ``make gradescope PHASE=1`` (or ``PHASE=2 PART=quantization``; ``DEST=path.zip``, default
   ``dist/gradescope-phase1.zip``).
2. In Gradescope: a Programming Assignment, "Configure Autograder", base image Ubuntu 22.04 or newer,
   upload the zip. The image build runs ``setup.sh`` (a few minutes: Python 3.11+, a venv at
   ``/autograder/venv`` with CPU torch and the course, ``make data``/``make models`` equivalents, and an
   unprivileged user ``student``). Then "Test Autograder" with a learner copy.
3. Learners upload (or link on GitHub) their copy of the repo, or just the phase folder
   (``phase1_basics/``), or just their ``starter/`` files. ``run_autograder`` (:mod:`graders.autograder_run`)
   says in the result's output what it found, grades only the learner's ``starter/`` code (files they did
   not upload come from the course's stubs), and writes Gradescope's ``results.json``.

What is protected: the bundle holds no reference solution to import or read; the learner's code runs in
the grader's child process as ``student`` (``grade --child-user``), so it can neither write
``/autograder/results`` nor change the course source (root owns both); whatever the learner's code writes,
the final ``results.json`` is the grader's own (a report root wrote), written after grading ends, and a
results.json is written even when grading cannot run (score 0 and why).
"""
from __future__ import annotations

import fnmatch
import shlex
import shutil
import subprocess
import tempfile
import tomllib
import zipfile
from pathlib import Path

from .course import REPO_ROOT, CourseError, phase as course_phase, phases
from .release import check_release, release_files

__all__ = ["CHILD_USER", "BUNDLE_TOP_FILES", "default_dest", "bundle_files", "setup_script", "run_script",
           "write_bundle"]

#: The unprivileged user setup.sh creates; the learner's code runs as this user.
CHILD_USER = "student"
#: Top-level files the bundle carries besides graders/, datasets/ and the phase folders (pip needs both).
BUNDLE_TOP_FILES = ("pyproject.toml", "README.md")
#: Reproducible zips: every entry gets this timestamp.
_ZIP_TIME = (2020, 1, 1, 0, 0, 0)


def default_dest(phase: int, part: str | None = None) -> Path:
    """``dist/gradescope-phase2-quantization.zip`` (``dist/`` is git-ignored)."""
    return REPO_ROOT / "dist" / f"gradescope-phase{phase}{'-' + part if part else ''}.zip"


def bundle_files(root: Path = REPO_ROOT) -> list[Path]:
    """Repo-relative paths the bundle carries: the learner copy's files under graders/, datasets/, the
    phase folders, plus :data:`BUNDLE_TOP_FILES` (no tests, notebooks or CI scripts; no reference)."""
    tops = {"graders", "datasets", *(ph.folder.split("/")[0] for ph in phases())}
    keep = []
    for rel in release_files(root):
        parts = rel.parts
        if (len(parts) > 1 and parts[0] in tops) or rel.as_posix() in BUNDLE_TOP_FILES:
            if "__pycache__" not in parts and not rel.name.endswith(".pyc"):
                keep.append(rel)
    return keep


# ## The two scripts ------------------------------------------------------------------------------

def _torch_pins(root: Path = REPO_ROOT) -> list[str]:
    """``["torch>=2.4,<2.15", "torchvision>=0.19,<0.30"]`` from pyproject.toml (installed from the CPU index)."""
    deps = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    return [d for d in deps if d.split(">")[0].split("<")[0].split("=")[0].strip() in ("torch", "torchvision")]


def setup_script(root: Path = REPO_ROOT) -> str:
    """setup.sh: Gradescope runs it once, as root, when it builds the image (network available)."""
    pins = " ".join(shlex.quote(p) for p in _torch_pins(root))
    return f"""#!/usr/bin/env bash
# Inference Lab autograder image setup. Gradescope runs this once, as root, when it builds the image.
# Written by `make gradescope` (graders/autograder.py); rebuild the bundle rather than editing it.
set -euo pipefail
ROOT="${{AUTOGRADER_ROOT:-/autograder}}"
SOURCE="$ROOT/source"
VENV="$ROOT/venv"   # run_autograder looks for it here
CHILD_USER="{CHILD_USER}"
# Gradescope's machines have no GPU: CPU wheels of torch are a tenth of the size of the CUDA ones.
TORCH_INDEX_URL="${{TORCH_INDEX_URL:-https://download.pytorch.org/whl/cpu}}"

# 1. Python 3.11 or newer (Ubuntu 22.04's python3 is 3.10: install python3.11 from its own archive), and the
#    tools the grader's sandbox uses where they are missing (unshare from util-linux; ip from iproute2).
APT_UPDATED=""
apt_install() {{
  export DEBIAN_FRONTEND=noninteractive
  if [ -z "$APT_UPDATED" ]; then apt-get update; APT_UPDATED=1; fi
  apt-get install -y --no-install-recommends "$@"
}}
find_python() {{
  for py in python3.13 python3.12 python3.11 python3; do
    if command -v "$py" >/dev/null 2>&1 && \\
       "$py" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then
      command -v "$py"; return 0
    fi
  done
  return 1
}}
PY="$(find_python || true)"
if [ -z "$PY" ]; then
  apt_install python3.11 python3.11-venv || apt_install python3.12 python3.12-venv
  PY="$(find_python)" || {{ echo "setup.sh: no Python 3.11 or newer could be installed" >&2; exit 1; }}
fi
command -v unshare >/dev/null 2>&1 || apt_install util-linux || true
command -v ip >/dev/null 2>&1 || apt_install iproute2 || true
echo "setup.sh: using $PY ($("$PY" --version))"

# 2. A venv with the course installed (editable: the graders and the data cache stay under $SOURCE).
"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet --index-url "$TORCH_INDEX_URL" {pins}
"$VENV/bin/python" -m pip install --quiet -e "$SOURCE"

# 3. The generated data and the trained models the graders use (make data, make models): nothing is
#    downloaded at grading time.
cd "$SOURCE"
"$VENV/bin/python" -m labdata.generate
"$VENV/bin/python" -m labdata.train --all

# 4. The unprivileged user the learner's code runs as (Gradescope's hardening advice: never run it as root).
if ! id -u "$CHILD_USER" >/dev/null 2>&1; then
  useradd --create-home --shell /bin/bash "$CHILD_USER"
fi

# 5. Root owns the course and the venv; everyone may read them, nobody else may change them. The cache
#    folders are sticky and world-writable, like /tmp: reading a cached model takes a lock file there,
#    and a non-root user can never replace a file root wrote.
chown -R root:root "$SOURCE" "$VENV"
chmod -R a+rX,go-w "$SOURCE" "$VENV"
find "$SOURCE/datasets/cache" -type d -exec chmod 1777 {{}} +
find "$SOURCE/datasets/cache" -type f -name '*.lock' -exec chmod 0666 {{}} +
chmod 0755 "$SOURCE/run_autograder"

# 6. Smoke test: the grader imports and sees this machine.
"$VENV/bin/python" -m graders fingerprint
echo "setup.sh: done"
"""


def run_script(phase: int, part: str | None = None) -> str:
    """run_autograder: Gradescope copies it to /autograder/run_autograder and runs it per submission, as root."""
    scope = f"--phase {phase}" + (f" --part {shlex.quote(part)}" if part else "")
    what = f"phase {phase}" + (f", part {part}" if part else "")
    return f"""#!/usr/bin/env bash
# Inference Lab autograder for {what}. Gradescope runs this once per submission, as root.
# Written by `make gradescope` (graders/autograder.py); the logic is in graders/autograder_run.py.
# Environment (for local simulations and tests): AUTOGRADER_ROOT (default /autograder), AUTOGRADER_PYTHON
# (default the venv setup.sh made), AUTOGRADER_ARGS (extra `grade` arguments, e.g. "--task 1 --quick").
set -u
ROOT="${{AUTOGRADER_ROOT:-/autograder}}"
PY="${{AUTOGRADER_PYTHON:-$ROOT/venv/bin/python}}"
RESULTS="$ROOT/results/results.json"
mkdir -p "$ROOT/results"
rm -f "$RESULTS"
cd "$ROOT/source" && AUTOGRADER_ROOT="$ROOT" "$PY" -m graders.autograder_run {scope}
code=$?
if [ ! -s "$RESULTS" ]; then
  # Python itself could not run: Gradescope still gets a result, with the reason.
  why="The autograder could not start (Python exited with code $code). Not a problem with your code: tell your instructor."
  {{
    printf '{{"score": 0.0, "execution_time": 0, "output": "%s", "output_format": "text", ' "$why"
    printf '"visibility": "visible", "stdout_visibility": "visible", "tests": []}}\\n'
  }} > "$RESULTS"
fi
exit 0
"""


# ## Writing the zip ------------------------------------------------------------------------------

def _commit(root: Path) -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _stage(stage: Path, phase: int, part: str | None, root: Path) -> list[str]:
    """Copy the bundle's files into ``stage``; return the zip's entry names (scripts first)."""
    scripts = {"setup.sh": setup_script(root), "run_autograder": run_script(phase, part)}
    for name, text in scripts.items():
        (stage / name).write_text(text, encoding="utf-8", newline="\n")
        (stage / name).chmod(0o755)
    (stage / "AUTOGRADER.txt").write_text(
        f"Inference Lab Gradescope autograder: phase {phase}{', part ' + part if part else ''}\n"
        f"built from commit {_commit(root)} by `make gradescope`; see graders/autograder.py\n", encoding="utf-8")
    names = [*scripts, "AUTOGRADER.txt"]
    for rel in bundle_files(root):
        target = stage / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, target)
        names.append(rel.as_posix())
    return names


def write_bundle(phase: int, dest: Path | None = None, *, part: str | None = None, root: Path = REPO_ROOT) -> Path:
    """Write the Gradescope autograder zip for ``phase`` (one ``part``, or all its parts) to ``dest``.

    Raises:
        CourseError: an unknown phase or part.
        RuntimeError: the staged bundle would carry reference code (nothing is written).
    Returns:
        The zip's path.
    """
    ph = course_phase(phase)
    if part is not None:
        ph.part(part)
    elif ph.multipart and all(p.planned for p in ph.parts):
        raise CourseError(f"phase {phase} has no graded part yet")
    dest = Path(dest) if dest else default_dest(phase, part)
    if dest.suffix != ".zip":
        raise ValueError(f"{dest}: Gradescope takes a .zip file")
    with tempfile.TemporaryDirectory(prefix="gradescope-bundle-") as tmp:
        stage = Path(tmp)
        names = _stage(stage, phase, part, root)
        problems = [f"{n}: a reference/ path" for n in names if fnmatch.fnmatch(f"/{n}", "*/reference/*")]
        problems += check_release(stage, root)
        if problems:
            raise RuntimeError("the Gradescope bundle would carry reference code (nothing was written):\n  "
                               + "\n  ".join(problems))
        dest.parent.mkdir(parents=True, exist_ok=True)
        partial = dest.with_name(dest.name + ".partial")
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name in names:
                info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                mode = 0o755 if (stage / name).stat().st_mode & 0o100 else 0o644
                info.external_attr = (0o100000 | mode) << 16   # a regular file with its permission bits
                zf.writestr(info, (stage / name).read_bytes())
        partial.replace(dest)
    return dest
