"""Import a learner's code, and turn whatever it does wrong into a clear, gradable failure.

The grader imports exactly one implementation package, ``<part package>.<impl>`` (for example
``phase2_optimization.quantization.starter``), from the submission's copy of the repo (by default
the grader's own copy). It never imports the reference
unless ``impl == "reference"``. The grader's own modules (``graders``) always come from the
grader's copy, never from the submission.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

__all__ = ["SubmissionError", "LearnerError", "Learner", "load_impl", "learner_dirs", "reference_dirs"]


class SubmissionError(Exception):
    """The learner's code did something a criterion cannot accept (wrong type, shape, NaN...)."""


class LearnerError(SubmissionError):
    """The learner's code raised, or could not be imported."""

    def __init__(self, message: str, *, not_implemented: bool = False):
        super().__init__(message)
        self.not_implemented = not_implemented


def learner_dirs(root: Path, folder: str, impl: str, repo_root: Path) -> list[Path]:
    """The folders holding the learner's code: a submission's whole phase folder, or, when this copy
    (``repo_root``) is graded, only the graded package ``<folder>/<impl>`` (its reference/ is the grader's)."""
    if Path(root).resolve() != Path(repo_root).resolve():
        return [Path(root) / folder.split("/")[0]]
    return [Path(repo_root) / folder / impl]


def reference_dirs(root: Path, impl: str, repo_root: Path) -> list[Path]:
    """Every ``reference/`` package, in this copy and in the submission, that nobody may see while a submission
    is graded; none when the reference itself is graded."""
    if impl == "reference":
        return []
    found = set()
    for base in {Path(repo_root).resolve(), Path(root).resolve()}:
        found |= {d for pat in ("phase*/reference", "phase*/*/reference") for d in base.glob(pat) if d.is_dir()}
    return sorted(found)


def load_impl(folder: str, impl: str, root: Path) -> ModuleType:
    """Import ``<folder>/<impl>`` (``phase2_optimization/quantization`` + ``starter``) from ``root``.

    ``root`` is a copy of the course repo (the grader's own, or a learner's submission). The phase's
    top package is loaded from that copy by path, so every module below it (the part package, its
    shared ``types.py``, the learner's files) resolves inside the copy too.
    Raises LearnerError with a one-line reason when the package is missing or fails to import.
    """
    root = Path(root).resolve()
    top = folder.split("/")[0]
    pkg_dir = root / top
    impl_dir = root / folder / impl
    if not (impl_dir / "__init__.py").is_file():
        extra = " (the learner copy has no reference solution)" if impl == "reference" else ""
        raise LearnerError(f"{impl_dir} not found{extra}")
    if top in sys.modules:
        loaded = Path(getattr(sys.modules[top], "__file__", "") or "").resolve()
        if loaded.parent != pkg_dir:
            raise LearnerError(f"{top} is already imported from {loaded}, not from {pkg_dir}")
    else:
        spec = importlib.util.spec_from_file_location(
            top, pkg_dir / "__init__.py", submodule_search_locations=[str(pkg_dir)])
        if spec is None or spec.loader is None:
            raise LearnerError(f"cannot import {pkg_dir}")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[top] = mod
        try:
            spec.loader.exec_module(mod)
        except BaseException as e:  # noqa: BLE001 - any failure of learner code is the learner's
            del sys.modules[top]
            raise LearnerError(f"importing {pkg_dir / '__init__.py'} failed: {_short(e)}") from None
    name = f"{folder.replace('/', '.')}.{impl}"
    try:
        module = importlib.import_module(name)
    except BaseException as e:  # noqa: BLE001
        raise LearnerError(f"importing {name} failed: {_short(e)}") from None
    if not Path(module.__file__).resolve().is_relative_to(impl_dir):
        raise LearnerError(f"{name} resolved to {module.__file__}, outside {impl_dir}")
    return module


def _short(e: BaseException) -> str:
    """``Type: message (file:line)`` naming the deepest frame of the learner's code."""
    tb = traceback.extract_tb(e.__traceback__)
    where = ""
    for frame in reversed(tb):
        if "/graders/" not in frame.filename:
            where = f" ({frame.filename}:{frame.lineno})"
            break
    if isinstance(e, SyntaxError):
        where = f" ({e.filename}:{e.lineno})"
    msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"{type(e).__name__}: {msg}{where}"[:500]


class Learner:
    """The learner's module, with calls that turn exceptions into LearnerError.

    ``learner.call("measure_latency", fn, iterations=50)`` calls the learner's function; anything it
    raises becomes a LearnerError whose message names the function and the exception (a
    NotImplementedError keeps the stub's own text, which points at the guide section).
    """

    def __init__(self, module: ModuleType | None, import_error: str | None = None,
                 after_call: Callable[[str], None] | None = None):
        self.module = module
        self.import_error = import_error
        self._after_call = after_call  # the grader's integrity check (graders.tamper), after each call

    def attr(self, name: str) -> Any:
        if self.module is None:
            raise LearnerError(f"could not import your code: {self.import_error}")
        try:
            return getattr(self.module, name)
        except AttributeError:
            raise LearnerError(f"{self.module.__name__} has no attribute {name!r} "
                               f"(is it listed in __all__ and imported in __init__.py?)") from None

    def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Call the learner's public function ``name`` (the grader's tools are checked after it returns)."""
        try:
            return self._invoke(self.attr(name), f"{name}(...)", args, kwargs)
        finally:
            if self._after_call is not None:
                self._after_call(f"during {name}(...)")

    def call_obj(self, obj: Any, *args: Any, what: str = "your object", **kwargs: Any) -> Any:
        """Call something the learner's code returned (a predictor, a callback)."""
        if not callable(obj):
            raise SubmissionError(f"{what} is not callable (got {type(obj).__name__})")
        return self._invoke(obj, what, args, kwargs)

    @staticmethod
    def _invoke(fn: Any, label: str, args: tuple, kwargs: dict) -> Any:
        try:
            return fn(*args, **kwargs)
        except NotImplementedError as e:
            text = str(e) or f"{label} is not implemented yet"
            raise LearnerError(f"not implemented yet: {text}", not_implemented=True) from None
        except SubmissionError:
            raise
        except MemoryError:
            raise LearnerError(f"{label} ran out of memory") from None
        except Exception as e:  # noqa: BLE001 - the learner's bug, reported, never fatal
            raise LearnerError(f"{label} raised {_short(e)}") from None
        except (KeyboardInterrupt, SystemExit, GeneratorExit):
            raise
        except BaseException as e:  # noqa: BLE001 - e.g. pytest.skip/fail raised by the learner's code
            raise LearnerError(f"{label} raised {type(e).__name__}: {str(e)[:200]} - only the grader decides "
                               f"what is skipped or failed") from None
