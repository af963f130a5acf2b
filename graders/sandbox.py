"""The grading child's sandbox: no network, a read-only grader, hidden reference solutions, its own tmp.

Where the OS allows unprivileged user namespaces (most Linux machines, and as root anywhere), the child is
started as ``unshare --user --map-root-user --net --mount sh -c SETUP``, where SETUP brings the loopback
interface up (test servers bind 127.0.0.1), bind-mounts the grader's copy read-only, mounts an empty
read-only tmpfs over every ``reference/`` folder (when a submission, not the reference, is graded), and
then ``exec unshare --user --mount`` once more: mounts set up by a more privileged namespace are locked in
the new one, so the learner's code cannot remount them writable or unmount them. Where that is not
permitted, grading goes on without it and the report says why (:attr:`Sandbox.protections`).

Always, whatever the OS: the child gets a fresh temporary folder of its own (``TMPDIR``, caches), the
runner's time and memory limits, and a fixed CPU affinity (changing it from the learner's code is caught
by the integrity checks). ``INFERENCE_LAB_SANDBOX=0`` turns the namespaces off (for debugging a grader).
"""
from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Sandbox", "sandbox_for", "namespaces_available", "child_env", "shared_cache"]

_SETUP = r"""
set -e
if command -v ip >/dev/null 2>&1; then ip link set lo up; fi
IFS='
'
for d in $LAB_SANDBOX_RO; do mount --bind "$d" "$d"; mount -o remount,bind,ro "$d"; done
for d in $LAB_SANDBOX_RW; do mount --bind "$d" "$d"; mount -o remount,bind,rw "$d"; done
for d in $LAB_SANDBOX_HIDE; do mount -t tmpfs -o ro,size=4k,mode=0555 lab-hidden "$d"; done
unset LAB_SANDBOX_RO LAB_SANDBOX_RW LAB_SANDBOX_HIDE
exec unshare --user --mount --map-user=0 --map-group=0 -- "$@"
"""


@dataclass
class Sandbox:
    """How to start one grading child: an argv prefix, extra environment, and what it protects."""

    prefix: list[str]
    env: dict[str, str]
    protections: dict[str, str] = field(default_factory=dict)


@functools.lru_cache(maxsize=4)
def namespaces_available(user: str | None = None) -> tuple[bool, str]:
    """(True, "") when nested user+network+mount namespaces work here (for ``user``), else (False, why not)."""
    if os.environ.get("INFERENCE_LAB_SANDBOX", "1") == "0":
        return False, "turned off by INFERENCE_LAB_SANDBOX=0"
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        return False, "util-linux's unshare/mount are not installed"
    cmd = ["unshare", "--user", "--map-root-user", "--net", "--mount", "--", "sh", "-c",
           "mount -t tmpfs lab-probe /mnt 2>/dev/null || mount -t tmpfs lab-probe /tmp; "
           "exec unshare --user --mount --map-user=0 --map-group=0 -- true"]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=20, user=user, cwd="/")
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, f"unshare failed to run ({type(e).__name__})"
    if p.returncode != 0:
        why = (p.stderr.strip().splitlines() or ["no message"])[-1][:200]
        return False, f"user namespaces are not permitted here ({why})"
    return True, ""


def shared_cache() -> Path:
    """A cache kept between children (matplotlib's font list takes seconds to build): writable by the child."""
    path = Path(tempfile.gettempdir()) / f"inference-lab-cache-{os.getuid()}"
    (path / "matplotlib").mkdir(parents=True, exist_ok=True)
    return path


def child_env(base: dict[str, str], tmp: Path) -> dict[str, str]:
    """``base`` with every temporary and cache folder a library may write to moved into ``tmp`` (matplotlib's
    into :func:`shared_cache`)."""
    env = dict(base)
    env["MPLCONFIGDIR"] = str(shared_cache() / "matplotlib")
    for var, sub in (("TMPDIR", ""), ("XDG_CACHE_HOME", "cache"),
                     ("TRITON_CACHE_DIR", "triton"), ("TORCHINDUCTOR_CACHE_DIR", "inductor"),
                     ("CUDA_CACHE_PATH", "nv")):
        path = tmp / sub if sub else tmp
        path.mkdir(parents=True, exist_ok=True)
        env[var] = str(path)
    # Usage telemetry off: grading is offline, and a library that phones home on import would be reported as the
    # submission looking up a host. `import openvino` starts openvino_telemetry, which declines when CI=true;
    # NNCF's own telemetry is a stub when NNCF_CI is set.
    env["CI"] = "true"
    env["NNCF_CI"] = "1"
    return env


def sandbox_for(*, readonly: list[Path], hide: list[Path], tmp: Path, base_env: dict[str, str],
                user: str | None = None, writable: list[Path] = ()) -> Sandbox:
    """The sandbox of one grading child.

    Args:
        readonly: folders the child sees read-only (the grader's copy: its code, thresholds, data).
        hide: folders replaced by an empty read-only folder (the ``reference/`` packages).
        writable: folders inside ``readonly`` that stay writable (the data cache the grader fills lazily; the
            audit hook still refuses the learner's own writes there).
        tmp: the child's own temporary folder (created by the caller, writable by the child).
        base_env: the environment to start from.
        user: the unprivileged user the child runs as (the runner must be root), or None.
    """
    env = child_env(base_env, tmp)
    prot = {"temporary folder": f"on: a fresh {tmp} (TMPDIR and library caches)",
            "time and memory limits": "on: per criterion, from EXPECTED_OUTCOMES.md (the runner kills the child)"}
    ok, why = namespaces_available(user)
    if user:
        prot["unprivileged user"] = f"on: the child runs as {user!r}"
    if not ok:
        for name in ("network", "read-only grader", "reference hidden"):
            prot[name] = f"off: {why}"
        return Sandbox(prefix=[], env=env, protections=prot)
    env["LAB_SANDBOX_RO"] = "\n".join(str(Path(d).resolve()) for d in readonly if Path(d).is_dir())
    env["LAB_SANDBOX_RW"] = "\n".join(str(Path(d).resolve()) for d in writable if Path(d).is_dir())
    env["LAB_SANDBOX_HIDE"] = "\n".join(str(Path(d).resolve()) for d in hide if Path(d).is_dir())
    prot["network"] = "on: a new network namespace (loopback only)" + (
        "" if shutil.which("ip") else "; iproute2 missing, so loopback stays down")
    prot["read-only grader"] = f"on: {', '.join(str(d) for d in readonly)} mounted read-only, locked" + (
        f" (writable for the grader's cache: {', '.join(str(d) for d in writable)})" if writable else "")
    prot["reference hidden"] = (f"on: {len(hide)} reference folder(s) replaced by an empty one" if hide
                                else "off: the reference itself is graded")
    prefix = ["unshare", "--user", "--map-root-user", "--net", "--mount", "--propagation", "private", "--",
              "sh", "-c", _SETUP, "lab-sandbox"]
    return Sandbox(prefix=prefix, env=env, protections=prot)
