"""``python -m phase4_production.server serve ...`` as a subprocess, for the tests of the CLI (Tasks 4.14, 4.15)."""
from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request

import numpy as np

from phase4_production.server.triton_peer import REPO_ROOT, free_port


def start_serve(repository, impl: str, *flags: str) -> tuple[subprocess.Popen, int]:
    """The CLI serving ``repository`` on a free port of 127.0.0.1; ``(process, port)``. Stop it in a finally."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "phase4_production.server", "serve", *flags, "--repository",
                             str(repository), "--port", str(port), "--impl", impl],
                            cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return proc, port


def first_answer(proc: subprocess.Popen, port: int, x: np.ndarray, timeout_s: float = 60.0) -> dict | None:
    """POST ``x`` to the affine model until the server answers (it is still starting); None if it never does."""
    body = json.dumps({"inputs": [{"name": "x", "shape": list(x.shape), "datatype": "FP32",
                                   "data": x.ravel().tolist()}]}).encode()
    deadline = time.monotonic() + timeout_s
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            req = urllib.request.Request(f"http://127.0.0.1:{port}/v2/models/affine/infer", data=body, method="POST")
            with urllib.request.urlopen(req, timeout=10) as r:
                return json.loads(r.read())
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    return None
