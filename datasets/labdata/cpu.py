"""What this machine's CPU is: the course's one reader of ``/proc/cpuinfo``.

The grader's machine fingerprint (``graders.profiles``) and the learner's hardware helpers
(``phase2_optimization/quantization/hardware.py``) both read the CPU through here, so the two can never
disagree about what the CPU can do.
"""
from __future__ import annotations

import platform
from functools import lru_cache

__all__ = ["cpu_model", "cpu_flags"]


@lru_cache(maxsize=1)
def _read() -> tuple[str, frozenset[str]]:
    model, flags = "", frozenset()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, val = line.partition(":")
                key = key.strip()
                if key in ("model name", "Model", "CPU part") and not model:
                    model = val.strip()
                elif key in ("flags", "Features") and not flags:
                    flags = frozenset(val.split())
    except OSError:
        pass
    return model or platform.processor() or platform.machine(), flags


def cpu_model() -> str:
    """The first CPU's model name (``AMD EPYC ...``); the platform's name where /proc/cpuinfo is absent."""
    return _read()[0]


def cpu_flags() -> set[str]:
    """The ISA flags of the first CPU (x86 ``flags``, Arm ``Features``); empty where there is no /proc/cpuinfo."""
    return set(_read()[1])
