"""A noisy neighbour on demand: competing CPU-bound processes on the same cores, bounded and stopped.

Used by ``python -m graders stability --neighbour 1`` and by the course suite's under-load grading
test, to check that a correct implementation never fails because the machine is busy (what a
laptop with a browser and an IDE open looks like). Each process spins on the CPU until it is
stopped or ``max_s`` seconds pass, whichever comes first, so a crashed caller cannot leave one behind
for long.
"""
from __future__ import annotations

import subprocess
import sys
from contextlib import contextmanager
from typing import Iterator

__all__ = ["busy_neighbour"]

_SPIN = "import sys, time\nend = time.monotonic() + float(sys.argv[1])\nwhile time.monotonic() < end:\n    pass\n"


@contextmanager
def busy_neighbour(processes: int = 1, max_s: float = 1800.0) -> Iterator[list[subprocess.Popen]]:
    """Run ``processes`` busy loops (each at most ``max_s`` s) for the duration of the ``with`` block.

    Raises:
        ValueError: ``processes`` outside 1..8 or ``max_s`` not positive.
    """
    if not 1 <= processes <= 8 or max_s <= 0:
        raise ValueError(f"busy_neighbour: processes must be 1..8 and max_s > 0, got {processes}, {max_s}")
    procs = [subprocess.Popen([sys.executable, "-c", _SPIN, str(max_s)], stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(processes)]
    try:
        yield procs
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)
