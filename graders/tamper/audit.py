"""An audit hook in the grading child: refuse and report what a submission must not do.

``sys.addaudithook`` hooks cannot be removed once installed, and they see operations in every module, so
a submission cannot slip past by calling a library. :class:`AuditGuard` is installed just before the
learner's package is imported and:

* refuses to import or read any file of a ``reference/`` package while a submission (not the reference)
  is graded: ``tampered``, and the import fails;
* refuses writes, renames, deletions and mode changes outside the allowed folders (the child's own
  temporary folder, the submission's folder, ``/dev``) made from the learner's code: ``tampered``;
* refuses network connections, sends and binds to anything but the loopback interface: ``tampered``
  (the sandbox also gives the child no network);
* flags memory-digging from the learner's code (``gc.get_objects``/``get_referrers``/``get_referents``:
  ``tampered``, since that is how the grader's objects would be found) and what no honest submission
  needs (``ctypes``, starting programs, another audit hook: ``flag``).

"From the learner's code" means a frame of a file under the learner's folders is on the call stack, so
the grader's own file and network use (pytest's temporary folders, a test server on 127.0.0.1) is never
flagged. The hook does a set lookup and returns for every other event, so timing is not disturbed.
"""
from __future__ import annotations

import os
import re
import sys
import sysconfig
import threading
from pathlib import Path
from typing import Callable

__all__ = ["AuditGuard", "LOOPBACK_HOSTS"]

_STDLIB = sysconfig.get_paths()["stdlib"] + os.sep
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "ip6-localhost"})
_REFERENCE_MODULE = re.compile(r"^phase\d+_\w+(\.\w+)*\.reference(\.|$)")
_WRITES = frozenset({"os.remove", "os.rename", "os.rmdir", "os.chmod", "os.chown", "os.truncate", "shutil.rmtree",
                     "os.symlink", "os.link", "os.mkdir", "os.utime"})
_NET = frozenset({"socket.connect", "socket.sendto", "socket.bind"})
_DIG = frozenset({"gc.get_objects", "gc.get_referrers", "gc.get_referents"})
_ODD = {"ctypes.dlopen": "loaded a native library with ctypes", "ctypes.cdata": "read raw memory with ctypes",
        "ctypes.PyObj_FromPtr": "turned a raw address into an object with ctypes",
        "subprocess.Popen": "started a program", "os.system": "ran a shell command", "os.exec": "replaced its process",
        "os.posix_spawn": "started a program", "os.spawn": "started a program",
        "sys.addaudithook": "installed an audit hook of its own"}
_WATCHED = frozenset({"open", "import", "compile", "socket.getaddrinfo", *_WRITES, *_NET, *_DIG, *_ODD})


def _caller() -> str:
    """The file of the first frame outside this module (who called the audited operation)."""
    f = sys._getframe(1)
    while f is not None and f.f_code.co_filename == __file__:
        f = f.f_back
    return f.f_code.co_filename if f is not None else ""


class AuditGuard:
    """The grading child's audit hook (install once, before importing the learner's code).

    Args:
        learner_dirs: folders holding the learner's code (the submission's phase folder, or ``<part>/<impl>``
            of the grader's own copy); a frame whose file lies below one is the learner's.
        writable: folders the learner's code may write to (the child's temporary folder, its own folder).
        reference_dirs: folders of ``reference/`` packages nobody may read; empty when the reference is graded.
        report: called with ``(severity, what, where)`` for each finding (it emits a signed Flag event).
    """

    def __init__(self, *, learner_dirs: list[Path], writable: list[Path], reference_dirs: list[Path],
                 report: Callable[[str, str, str], None]):
        self._learner = tuple(str(Path(d).resolve()) + os.sep for d in learner_dirs)
        self._writable = tuple(str(Path(d).resolve()) + os.sep for d in writable) + ("/dev/",)
        self._reference = tuple(str(Path(d).resolve()) + os.sep for d in reference_dirs)
        self._grade_reference = not reference_dirs
        self._report = report
        self._seen: set[tuple[str, str]] = set()
        self._local = threading.local()
        self.installed = False

    def install(self) -> None:
        sys.addaudithook(self._hook)
        self.installed = True

    # -- the hook --------------------------------------------------------------------------------------
    def _where(self, direct: bool = False) -> str:
        """``file:line`` of the innermost learner frame on the stack, or "".

        ``direct``: only when the learner's code is the first caller outside the standard library (it made the
        call itself, rather than through a library that did it for its own reasons).
        """
        f = sys._getframe(1)
        while f is not None:
            name = f.f_code.co_filename
            if name.startswith(self._learner):
                return f"{name}:{f.f_lineno}"
            if direct and name != __file__ and not name.startswith(_STDLIB) and not name.startswith("<frozen"):
                return ""
            f = f.f_back
        return ""

    def _flag(self, severity: str, what: str, where: str) -> None:
        if (what, where) in self._seen:
            return
        self._seen.add((what, where))
        self._report(severity, what, where)

    def _hook(self, event: str, args: tuple) -> None:
        if event not in _WATCHED or getattr(self._local, "busy", False):
            return
        self._local.busy = True  # the hook's own operations (sys._getframe, the report's write) pass
        try:
            self._check(event, args)
        finally:
            self._local.busy = False

    def _check(self, event: str, args: tuple) -> None:
        if event == "import":
            name = str(args[0])
            if not self._grade_reference and _REFERENCE_MODULE.match(name):
                self._flag("tampered", f"imported the reference solution ({name})", self._where())
                raise ImportError(f"{name}: the reference solution cannot be imported while a submission is graded")
            return
        if event == "compile":
            # Code compiled under a library's file name would pass the integrity check as the library's own.
            filename = args[1] if len(args) > 1 else None
            if isinstance(filename, (str, bytes)) and os.path.isabs(os.fsdecode(filename)) \
                    and not _caller().startswith("<frozen importlib"):  # importing a module compiles its source
                name = os.path.abspath(os.fsdecode(filename))
                if not (name + os.sep).startswith(self._learner + self._writable) and (where := self._where(direct=True)):
                    self._flag("tampered", f"compiled code under another file's name ({name})", where)
            return
        if event == "open":
            path, mode = args[0], args[1]
            if not isinstance(path, (str, bytes, os.PathLike)):
                return  # a descriptor
            full = os.path.abspath(os.fsdecode(path))
            if self._reference and (full + os.sep).startswith(self._reference):
                self._flag("tampered", f"read the reference solution ({full})", self._where())
                raise PermissionError(f"{full}: the reference solution cannot be read while a submission is graded")
            writing = isinstance(mode, str) and any(c in mode for c in "wax+") or (
                isinstance(args[2], int) and args[2] & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC))
            if writing:
                self._check_write(full, f"wrote to {full}")
            return
        if event in _WRITES:
            if args and isinstance(args[0], (str, bytes, os.PathLike)):
                full = os.path.abspath(os.fsdecode(args[0]))
                self._check_write(full, f"changed {full} ({event})")
            return
        if event in _NET or event == "socket.getaddrinfo":
            host = args[0] if event == "socket.getaddrinfo" else args[1]
            if event != "socket.getaddrinfo":
                if not isinstance(host, tuple) or not host:
                    return  # AF_UNIX and friends: local by construction
                host = host[0]
            host = os.fsdecode(host) if isinstance(host, (bytes, str)) else str(host)
            if host in LOOPBACK_HOSTS or host.startswith("127.") or (event == "socket.bind" and host == ""):
                return
            verb = {"socket.bind": "listened on", "socket.getaddrinfo": "looked up"}.get(event, "connected to")
            self._flag("tampered", f"{verb} {host} (grading is offline: only 127.0.0.1 is allowed)", self._where())
            raise PermissionError(f"{host}: the grader allows no network but 127.0.0.1")
        # Memory digging and odd calls count when the learner's code made them itself, not through a library
        # (matplotlib runs fc-list to build its font cache; torch loads native libraries with ctypes).
        where = self._where(direct=True)
        if not where:
            return
        if event in _DIG:
            self._flag("tampered", f"searched the interpreter's objects ({event})", where)
        elif event in _ODD:
            self._flag("flag", _ODD[event], where)

    def _check_write(self, full: str, what: str) -> None:
        if (full + os.sep).startswith(self._writable) or full in ("/dev/null",):
            return
        where = self._where()
        if not where:
            return  # the grader's own file
        self._flag("tampered", f"{what}, outside its folder", where)
        raise PermissionError(f"{full}: while graded, your code may write only to its own folder and to temporary "
                              "files (tempfile / the paths the grader gives)")
