"""Hardware profiles and the machine fingerprint recorded in every report.

Profiles key the thresholds in EXPECTED_OUTCOMES.md:

* ``cpu``       any x86-64 or Arm CPU without INT8 dot-product instructions (the build machine: AVX2).
* ``cpu-vnni``  a CPU with AVX512-VNNI, AVX-VNNI or AMX: INT8 kernels run far faster; falls back to
                ``cpu`` thresholds wherever it has none of its own.
* ``cuda`` also falls back to ``cpu`` for criteria measured the same way on any machine.
* ``cuda``      an NVIDIA GPU visible to PyTorch.

:func:`fingerprint` needs no GPU library: it reads ``/proc/cpuinfo``, package metadata and, when
present, ``nvidia-smi``. Whether PyTorch can use the GPU is added by the grading session itself.
"""
from __future__ import annotations

import os
import platform
import shutil
import subprocess
from importlib import metadata

from labdata.cpu import cpu_flags, cpu_model

__all__ = ["PROFILES", "FALLBACK", "fallback_chain", "fingerprint", "detect_profile", "cpu_isa_flags"]

PROFILES = ("cpu", "cpu-vnni", "cuda")
FALLBACK = {"cpu-vnni": "cpu", "cuda": "cpu"}

#: ISA flags worth knowing for inference speed (x86 names from /proc/cpuinfo; Arm: asimd, sve...).
_INTERESTING = (
    "sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni",
    "avx512_bf16", "avx512_fp16", "amx_tile", "amx_int8", "amx_bf16", "asimd", "asimddp", "sve", "i8mm",
)
_VNNI = {"avx512_vnni", "avx_vnni", "amx_int8"}
_PACKAGES = ("torch", "torchvision", "onnx", "onnxruntime", "onnxruntime-gpu", "tensorrt", "numpy",
             "pytest-benchmark")


def fallback_chain(profile: str) -> list[str]:
    chain = [profile]
    while chain[-1] in FALLBACK:
        chain.append(FALLBACK[chain[-1]])
    return chain


def _cpuinfo() -> tuple[str, set[str]]:
    return cpu_model(), cpu_flags()


def cpu_isa_flags() -> list[str]:
    return [f for f in _INTERESTING if f in _cpuinfo()[1]]


def _nvidia_smi() -> list[dict[str, str]]:
    exe = shutil.which("nvidia-smi")
    if not exe:
        return []
    try:
        out = subprocess.run(
            [exe, "--query-gpu=name,driver_version,memory.total,compute_cap", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=20, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    gpus = []
    for line in out.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 4:
            gpus.append({"name": parts[0], "driver": parts[1], "memory": parts[2], "compute_capability": parts[3]})
    return gpus


def fingerprint() -> dict:
    """What the machine is: CPU model and ISA flags, cores, memory, GPUs and driver, library versions."""
    model, _ = _cpuinfo()
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count() or 1
    try:
        import psutil

        physical = psutil.cpu_count(logical=False)
        mem_gib = round(psutil.virtual_memory().total / 2**30, 1)
    except Exception:  # psutil is a dependency, but the fingerprint must never fail
        physical, mem_gib = None, None
    versions = {}
    for pkg in _PACKAGES:
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    gpus = _nvidia_smi()
    return {
        "cpu_model": model,
        "isa": cpu_isa_flags(),
        "cores": os.cpu_count(),
        "cores_physical": physical,
        "cores_usable": affinity,
        "memory_gib": mem_gib,
        "gpu": gpus[0]["name"] if gpus else None,
        "gpus": gpus,
        "gpu_driver": gpus[0]["driver"] if gpus else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": versions.get("torch"),
        "onnxruntime": versions.get("onnxruntime-gpu") or versions.get("onnxruntime"),
        "versions": versions,
    }


def detect_profile(fp: dict, cuda_available: bool) -> str:
    """``cuda`` when PyTorch sees a GPU, ``cpu-vnni`` when the CPU has INT8 dot products, else ``cpu``."""
    if cuda_available:
        return "cuda"
    if _VNNI & set(fp.get("isa", [])):
        return "cpu-vnni"
    return "cpu"
