"""What this CPU can do for INT8 and half precision (helpers, written in full).

``cpu_flags()`` comes from ``labdata.cpu``, the course's one reader of ``/proc/cpuinfo``.

INT8 and BF16 speed depends on instructions the CPU may or may not have; Linux lists them in the
``flags`` line (x86) or ``Features`` line (Arm) of ``/proc/cpuinfo``. QUANTIZATION_GUIDE.md,
"Key concepts", explains what each one buys.
"""
from __future__ import annotations

import platform

from labdata.cpu import cpu_flags

__all__ = ["cpu_flags", "cpu_has_int8_dot_product", "resolve_reduce_range", "INT8_DOT_PRODUCT_FLAGS"]

#: Flags of INT8 dot-product instructions: x86 AVX512-VNNI, AVX-VNNI, AMX-INT8; Arm dot product / i8mm.
INT8_DOT_PRODUCT_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm")


def cpu_has_int8_dot_product() -> bool:
    """True when the CPU has INT8 dot-product instructions (VNNI, AMX-INT8, Arm dot product).

    Without them (plain AVX2, as on many cloud VMs) x86 INT8 kernels multiply u8 x s8 pairs into
    16-bit sums (``vpmaddubsw``) that can saturate: see ``reduce_range``.
    """
    if platform.machine().lower() in ("arm64", "aarch64"):
        return bool({"asimddp", "i8mm"} & cpu_flags())
    return bool(set(INT8_DOT_PRODUCT_FLAGS) & cpu_flags())


def resolve_reduce_range(reduce_range: bool | None) -> bool:
    """A config's ``reduce_range``, with None resolved for this CPU (True without INT8 dot products)."""
    if reduce_range is None:
        return not cpu_has_int8_dot_product()
    return bool(reduce_range)
