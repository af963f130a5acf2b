"""What the server criteria that start the learner's ScaledServer share: the load client, the worker processes
seen from /proc, a bounded start and a shutdown that leaves no process behind."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from tritonclient.grpc import model_config_pb2

from ...submission import LearnerError
from .workload import CONFIG, affine_repository, grader_models

__all__ = ["LOADCLIENT", "load", "child_pids", "bad", "shutdown", "start_scaled", "start_affine_pair"]

LOADCLIENT = Path(__file__).with_name("loadclient.py")


def load(url: str, model: str, *, streams: int, duration: float, warmup: float = 1.0, rows: int = 0,
         feature: str = "", out_dims: str = "", inp: str = "x", out: str = "y", expect: str = "",
         pool: Path | None = None, timeline: bool = False, timeout_s: float = 15.0, count: int = 0,
         retry: bool = True) -> dict:
    """Run the grader's load client against ``url`` and return its report (bounded in time; ``count``: at most
    that many requests; ``retry``: a 503 with Retry-After is retried once; ``pool``: an npz of inputs and right
    outputs to send instead of random FP32 rows, see ``frames_workload.frame_pool``)."""
    cmd = [sys.executable, str(LOADCLIENT), "--url", url, "--model", model, "--input", inp, "--output", out,
           "--rows", str(rows), "--feature", feature, "--out-dims", out_dims, "--streams", str(streams),
           "--duration", str(duration), "--warmup", str(warmup), "--timeout", str(timeout_s)]
    if expect:
        cmd += ["--expect", expect]
    if pool is not None:
        cmd += ["--pool", str(pool)]
    if timeline:
        cmd.append("--timeline")
    if count:
        cmd += ["--count", str(count)]
    if not retry:
        cmd.append("--no-retry")
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + warmup + timeout_s + 60,
                          cwd=str(Path(__file__).resolve().parents[3]))
    if done.returncode != 0:
        raise RuntimeError(f"the grader's load client failed: {done.stderr[-600:]}")
    return json.loads(done.stdout)


def child_pids(exclude: set[int] = frozenset()) -> set[int]:
    """Live child processes of this process but the grader's load client (read from /proc, not asked of the
    submission): a worker started by any thread of the learner's code is listed under that thread's task."""
    pids: set[int] = set()
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        try:
            pids.update(int(p) for p in (task / "children").read_text().split())
        except OSError:
            continue
    live = set()
    for pid in pids - set(exclude):
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if state != "Z" and LOADCLIENT.name.encode() not in cmdline:  # the grader's own load client is no worker
            live.add(pid)
    return live


def bad(report: dict) -> int:
    return sum(n for k, n in report["counts"].items() if k != "ok")


def shutdown(learner, server, before: set[int]) -> str | None:
    """Close the learner's server (no drain) and kill whatever worker process it left; its error, if any."""
    error = None
    try:
        learner.call_obj(server.close, drain=False, timeout_s=5.0, what="ScaledServer.close")
    except LearnerError as e:
        error = str(e)
    for pid in child_pids(before):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return error


def start_scaled(learner, models, what: str, **kwargs):
    """The learner's ScaledServer on the grader's models (``kwargs`` to its constructor), started, with a first
    request answered through it."""
    before = child_pids()
    server = learner.call("ScaledServer", models, **kwargs)
    learner.call_obj(server.start, what=f"ScaledServer.start ({what})")
    parse = learner.attr("parse_infer_request")
    name = next(iter(models))
    config = models[name][max(models[name])].config
    spec = config.input[0]
    shape = [1, *(int(d) for d in spec.dims)]
    datatype = model_config_pb2.DataType.Name(spec.data_type).removeprefix("TYPE_")
    body = json.dumps({"inputs": [{"name": spec.name, "shape": shape, "datatype": datatype,
                                   "data": [1] * int(np.prod(shape))}]}).encode()
    try:
        learner.call_obj(server.infer, name, None, parse(body), what="ScaledServer.submit_infer")
    except LearnerError:
        shutdown(learner, server, before)
        raise
    return server


def start_affine_pair(learner, prefix: str):
    """The learner's ScaledServer on the grader's affine model with two instances (``count: 2``), started in a fresh
    repository folder named ``prefix``: returns (the child processes there were before it, the server)."""
    folder = affine_repository(Path(tempfile.mkdtemp(prefix=prefix)), versions=(1,),
                               config=CONFIG.replace("count: 1", "count: 2"))
    before = child_pids()
    return before, start_scaled(learner, grader_models(folder, [1]), "the affine model, two instances")
