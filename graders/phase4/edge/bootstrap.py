"""The edge profile, inside the device process: run as ``python -I bootstrap.py BUNDLE REPORT_FD [args...]``.

Never imported by the grader. Before the bundle's runner starts it installs two guards and then runs the runner
as ``__main__`` with ``sys.argv = [runner, *args]``:

- an import blocker: ``torch`` (and the course's own packages, which live outside the bundle) raise ImportError
  with the reason, as on a device where they are not installed;
- an audit hook on ``open``: a file outside the bundle folder and outside the Python installation (the
  interpreter, its standard library and site-packages; system libraries) raises PermissionError with the path.

Each event is also written as a JSON line to the file descriptor ``REPORT_FD``, which the grader reads.
"""
import importlib.abc
import json
import os
import runpy
import sys
import sysconfig

BLOCKED = {"torch": "PyTorch is not installed on the device",
           "torchvision": "PyTorch is not installed on the device",
           "executorch": "ExecuTorch's Python package needs torch; on a device it runs through its C++ runtime",
           "torchao": "PyTorch is not installed on the device",
           "labdata": "the course's data package is not on the device: copy what you need into the bundle",
           "phase4_production": "the course's package is not on the device: copy what you need into the bundle",
           "graders": "the grader is not on the device"}


def main() -> None:
    folder = os.path.realpath(sys.argv[1])
    report = os.fdopen(int(sys.argv[2]), "w", buffering=1)
    runner_args = sys.argv[3:]

    def say(kind: str, **fields) -> None:
        try:
            report.write(json.dumps({"kind": kind, **fields}) + "\n")
        except (OSError, ValueError):
            pass

    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            top = name.partition(".")[0]
            if top in BLOCKED:
                say("import", name=name)
                raise ImportError(f"edge profile: `import {name}` is blocked: {BLOCKED[top]}")
            return None

    sys.meta_path.insert(0, Blocker())
    paths = sysconfig.get_paths()
    allowed = {folder, os.path.realpath(sys.prefix), os.path.realpath(sys.base_prefix),
               os.path.realpath(sys.exec_prefix), *(os.path.realpath(paths[k]) for k in ("stdlib", "platstdlib",
                                                                                         "purelib", "platlib"))}
    allowed |= {"/usr", "/lib", "/lib64", "/etc", "/proc", "/sys", "/dev"}
    allowed = tuple(sorted(allowed))

    def inside(path: str) -> bool:
        return any(path == a or path.startswith(a.rstrip("/") + "/") for a in allowed)

    def hook(event: str, args) -> None:
        if event != "open" or not args or isinstance(args[0], int):
            return
        raw = args[0]
        path = os.path.realpath(os.fsdecode(raw) if isinstance(raw, bytes) else str(raw))
        if not inside(path):
            say("outside", path=path)
            raise PermissionError(f"edge profile: the bundle opened {path}, outside its folder {folder}")

    sys.addaudithook(hook)
    entry = os.path.join(folder, "runner.py")
    try:
        with open(os.path.join(folder, "bundle.json")) as f:
            entry = os.path.join(folder, json.load(f).get("entry", "runner.py"))
    except (OSError, ValueError, AttributeError):
        pass
    os.chdir(folder)
    sys.argv = [entry, *runner_args]
    say("start", entry=entry)
    runpy.run_path(entry, run_name="__main__")


if __name__ == "__main__":
    main()
