"""The grader's tools, snapshot before the learner's code is imported and checked after it runs.

Timing has to happen in the learner's process, so the learner's code could replace what the grader
measures with: ``paired_ratio`` in a criterion module's globals, ``time.perf_counter``, ``torch.nn.
functional.linear`` under the grader's baseline, ``onnxruntime.InferenceSession.run``... :class:`Snapshot`
keeps a reference to each of these objects (so identity comparisons are exact) and :meth:`Snapshot.changes`
lists every one that is no longer the same object, whose code object was swapped, or a tracing/profiling
hook or CPU affinity that changed. The plugin checks at each criterion's start and end and after each
call into the learner's package; any change fails the criterion as ``tampered``.

Watched: every ``graders`` module's functions, classes (and their methods) and numbers; ``time``'s clocks;
``builtins``; ``torch`` (top level, ``nn.functional``, ``Tensor``, ``nn.Module`` and every ``nn`` layer
class, ``cuda``, ``testing``); ``numpy``'s top level; ``onnxruntime`` and its ``InferenceSession``.
"""
from __future__ import annotations

import os
import sys
import threading
import types
from typing import Any

__all__ = ["Snapshot"]

_SIMPLE = (types.FunctionType, types.BuiltinFunctionType, types.MethodType, type, types.ModuleType,
           staticmethod, classmethod, property, int, float, str, bool)
_CALLABLE = (types.FunctionType, types.BuiltinFunctionType, types.MethodDescriptorType, types.WrapperDescriptorType,
             types.MethodWrapperType, staticmethod, classmethod, property, type)


def _namespace_items(ns: dict, kinds: tuple) -> list[tuple[str, Any]]:
    return [(k, v) for k, v in list(ns.items()) if isinstance(v, kinds) and not (k.startswith("__") and k != "__call__")]


class Snapshot:
    """Identities of the grader's tools at one moment (take it before importing learner code)."""

    def __init__(self) -> None:
        self._entries: list[tuple[str, dict, str, Any, Any]] = []  # (label, namespace, key, object, code)
        self._trace = (sys.gettrace(), sys.getprofile(), getattr(threading, "_trace_hook", None),
                       getattr(threading, "_profile_hook", None))
        self._affinity = _affinity()
        self._roots = {lib: os.path.dirname(os.path.abspath(sys.modules[lib].__file__)) + os.sep
                       for lib in ("torch", "numpy", "onnxruntime") if getattr(sys.modules.get(lib), "__file__", None)}

    @classmethod
    def take(cls) -> "Snapshot":
        snap = cls()
        for name, mod in sorted(sys.modules.items()):
            if mod is not None and (name == "graders" or name.startswith("graders.")):
                snap._module(name, mod, deep=True)
        import time

        for fn in ("perf_counter", "perf_counter_ns", "monotonic", "monotonic_ns", "time", "time_ns", "sleep",
                   "process_time", "process_time_ns", "thread_time", "thread_time_ns"):
            snap._add(f"time.{fn}", time.__dict__, fn)
        import builtins

        snap._namespace("builtins", builtins.__dict__, _CALLABLE)
        for lib in ("torch", "numpy", "onnxruntime"):
            if lib in sys.modules:
                snap._library(lib)
        return snap

    # -- building ------------------------------------------------------------------------------------
    def _add(self, label: str, ns: dict, key: str) -> None:
        if key not in ns:
            return
        obj = ns[key]
        code = obj.__code__ if isinstance(obj, types.FunctionType) else None
        self._entries.append((label, ns, key, obj, code))

    def _namespace(self, label: str, ns: dict, kinds: tuple) -> None:
        for k, _ in _namespace_items(ns, kinds):
            self._add(f"{label}.{k}", ns, k)

    def _module(self, name: str, mod: types.ModuleType, *, deep: bool) -> None:
        ns = vars(mod)
        self._namespace(name, ns, _SIMPLE)
        if deep:  # the methods of the grader's own classes (Witness.__call__, Grade.record, ...)
            for k, v in list(ns.items()):
                if isinstance(v, type) and getattr(v, "__module__", "") == name:
                    self._namespace(f"{name}.{k}", v.__dict__, _CALLABLE)

    def _library(self, lib: str) -> None:
        mod = sys.modules[lib]
        self._namespace(lib, vars(mod), _CALLABLE)
        if lib == "torch":
            import torch
            import torch.nn.functional as F

            self._namespace("torch.nn.functional", vars(F), _CALLABLE)
            self._namespace("torch.Tensor", torch.Tensor.__dict__, _CALLABLE)
            self._namespace("torch._C.TensorBase", torch._C.TensorBase.__dict__, _CALLABLE)
            for sub in ("cuda", "testing", "autograd.grad_mode"):
                m = sys.modules.get(f"torch.{sub}")
                if m is not None:
                    self._namespace(f"torch.{sub}", vars(m), _CALLABLE)
            for k, cls in list(vars(torch.nn).items()):
                if isinstance(cls, type) and issubclass(cls, torch.nn.Module):
                    self._namespace(f"torch.nn.{k}", cls.__dict__, _CALLABLE)
        elif lib == "onnxruntime":
            cls = getattr(mod, "InferenceSession", None)
            if isinstance(cls, type):
                for klass in cls.__mro__[:-1]:
                    self._namespace(f"onnxruntime.{klass.__name__}", klass.__dict__, _CALLABLE)

    # -- checking ------------------------------------------------------------------------------------
    def _library_own(self, label: str, now: Any) -> bool:
        """A library replacing one of its own functions with a function written in its own files (torch wraps
        a few at the first import of ``torch._dynamo``). The grader's modules, clocks and builtins: never."""
        lib = label.split(".")[0]
        root = self._roots.get(lib)
        if root is None or not isinstance(now, types.FunctionType):
            return False
        return now.__code__.co_filename.startswith(root)

    def __len__(self) -> int:
        return len(self._entries)

    def changes(self, limit: int = 5) -> list[str]:
        """What is no longer as it was (at most ``limit`` items), e.g. ``"graders.harness.paired_ratio was
        replaced"``; empty when nothing changed."""
        found: list[str] = []
        for i, (label, ns, key, obj, code) in enumerate(self._entries):
            now = ns.get(key, _MISSING)
            if now is not obj:
                if self._library_own(label, now):  # e.g. importing torch._dynamo wraps torch.manual_seed
                    self._entries[i] = (label, ns, key, now, now.__code__)
                    continue
                found.append(f"{label} was {'deleted' if now is _MISSING else 'replaced'}")
            elif code is not None and obj.__code__ is not code:
                found.append(f"{label} had its code replaced")
            if len(found) >= limit:
                return found
        trace = (sys.gettrace(), sys.getprofile(), getattr(threading, "_trace_hook", None),
                 getattr(threading, "_profile_hook", None))
        if trace != self._trace:
            found.append("a tracing or profiling hook was installed (sys.settrace / sys.setprofile)")
        if _affinity() != self._affinity:
            found.append(f"the grading process's CPU affinity was changed (from {sorted(self._affinity or [])})")
        return found[:limit]


_MISSING = object()


def _affinity() -> frozenset[int] | None:
    try:
        return frozenset(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None
