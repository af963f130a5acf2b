"""Real Triton, on this machine, as the peer your server is measured against (helper, written in full).

``nvidia-pytriton`` ships a real Triton Inference Server binary (with its Python backend only). This module serves
one model of a Triton model repository through it: the same ``model.onnx``, run by ONNX Runtime on the CPU, with
Triton's own dynamic batcher, HTTP/gRPC front ends (KServe v2) and Prometheus metrics, configured from the model's
``config.pbtxt`` (``max_batch_size``, ``dynamic_batching { max_queue_delay_microseconds, preferred_batch_size }``,
``instance_group { count }``, the latest version folder or ``--version``).

Triton's Python backend loads the operating system's ``libpython3.11.so``, so the peer runs in its own virtualenv
made from the OS's ``python3.11`` with ``numpy<2`` (pytriton's pin): ``make triton`` creates ``.venv-triton`` from
``triton-requirements.txt``. Two halves live here:

- :class:`TritonPeer` (course virtualenv, standard library only): starts the peer on 127.0.0.1 and free ports, waits
  until it is ready, stops it::

      with TritonPeer("model_repository/digits") as peer:
          client = tritonclient.http.InferenceServerClient(peer.http_url)

- ``main()`` (inside ``.venv-triton``): ``python -m phase4_production.server.triton_peer --model DIR --http-port P
  --grpc-port G --metrics-port M``; prints one JSON line ``{"ready": true, ...}`` once the model is ready and
  serves until its standard input closes or it gets SIGTERM.

On a GPU server you run the full Triton instead (the NGC container, whose ``onnxruntime_onnx`` and ``tensorrt``
backends load the same repository as it is): SERVER_DEPLOYMENT_GUIDE.md shows the command.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

__all__ = ["TRITON_VENV", "TRITON_PYTHON", "PeerError", "TritonPeer", "free_port", "triton_available", "main"]

REPO_ROOT = Path(__file__).resolve().parents[2]
#: ``make triton`` creates it (the OS's python3.11, pytriton, numpy<2, onnxruntime, tritonclient).
TRITON_VENV = REPO_ROOT / ".venv-triton"
TRITON_PYTHON = TRITON_VENV / "bin" / "python"


class PeerError(RuntimeError):
    """The Triton peer could not start, did not become ready in time, or its model repository is unusable.

    ``retry``: the failure was Triton's start-up, not the repository (``TritonPeer.start`` tries again).
    """

    def __init__(self, message: str, *, retry: bool = False):
        super().__init__(message)
        self.retry = retry


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def triton_available() -> str | None:
    """None when the peer can run here; else why not (for a test's skip reason or a grader's message)."""
    if not TRITON_PYTHON.exists():
        return f"real Triton's virtualenv {TRITON_VENV.name} is missing: run `make triton`"
    if sys.platform != "linux":
        return "nvidia-pytriton runs on Linux only"
    return None


class TritonPeer:
    """Real Triton serving the model folder ``model_dir`` (``<repo>/<model>``), on 127.0.0.1, as a context manager.

    Args:
        model_dir: a Triton model folder: ``config.pbtxt`` and numbered version folders holding ``model.onnx``.
        version: the version to serve (default: the highest with a ``model.onnx``).
        ready_timeout_s: how long start-up may take before :class:`PeerError` (Triton's start is 5-20 s here).
        threads: ONNX Runtime intra-op threads per instance.

    Attributes (after ``start``): ``http_port``, ``grpc_port``, ``metrics_port``, ``http_url`` ("127.0.0.1:P", the
    form tritonclient takes), ``grpc_url``, ``metrics_url`` (a full URL), ``ready`` (the peer's ready line),
    ``pid``.
    """

    def __init__(self, model_dir: str | Path, *, version: int | None = None, ready_timeout_s: float = 60.0,
                 threads: int = 1):
        self.model_dir, self.version = Path(model_dir).resolve(), version
        self.ready_timeout_s, self.threads = ready_timeout_s, threads
        self.proc: subprocess.Popen | None = None
        self.ready: dict = {}
        self._lines: collections.deque[str] = collections.deque(maxlen=200)

    def start(self, attempts: int = 3) -> TritonPeer:
        """Start real Triton and wait until the model is ready; returns self.

        Triton's own start-up is tried up to ``attempts`` times (nvidia-pytriton's Python backend now and then fails
        its first handshake on a loaded machine; a port taken meanwhile fails the same way); a repository it
        cannot serve fails at once.

        Raises:
            PeerError: not available here, the repository cannot be served, or Triton did not start.
        """
        why = triton_available()
        if why:
            raise PeerError(why)
        for attempt in range(1, attempts + 1):
            try:
                return self._start_once()
            except PeerError as e:
                if not e.retry or attempt == attempts:
                    raise

    def _start_once(self) -> TritonPeer:
        self.ready, self._lines = {}, collections.deque(maxlen=200)
        self.http_port, self.grpc_port, self.metrics_port = free_port(), free_port(), free_port()
        cmd = [str(TRITON_PYTHON), "-m", "phase4_production.server.triton_peer", "--model", str(self.model_dir),
               "--http-port", str(self.http_port), "--grpc-port", str(self.grpc_port),
               "--metrics-port", str(self.metrics_port), "--threads", str(self.threads)]
        if self.version is not None:
            cmd += ["--version", str(self.version)]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
        env["PYTHONPATH"] = str(REPO_ROOT)
        self.proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        got = threading.Event()
        threading.Thread(target=self._read, args=(self.proc, got), daemon=True, name="triton-peer-output").start()
        deadline = time.monotonic() + self.ready_timeout_s
        while not got.wait(0.2) and time.monotonic() < deadline and self.proc.poll() is None:
            pass
        got.wait(0.5)  # the line may trail the process's exit
        if not self.ready:
            why = (f"exited with code {self.proc.returncode}" if self.proc.poll() is not None
                   else f"was not ready within {self.ready_timeout_s:.0f} s")
            tail = self.log_tail()
            self.stop()
            raise PeerError(f"real Triton {why}: {tail}", retry=True)
        if not self.ready.get("ready"):
            tail = self.ready.get("error") or self.log_tail()
            retry = bool(self.ready.get("retry"))
            self.stop()
            raise PeerError(("real Triton did not start: " if retry else f"real Triton could not serve "
                             f"{self.model_dir}: ") + tail, retry=retry)
        return self

    def _read(self, proc: subprocess.Popen, got: threading.Event) -> None:
        """Keep the last lines of the peer's output (Triton's log); the first JSON line is its ready line."""
        try:
            for raw in proc.stdout:
                line = raw.decode("utf-8", "replace").rstrip()
                self._lines.append(line)
                if not got.is_set() and line.startswith("{"):
                    try:
                        self.ready = json.loads(line)
                    except json.JSONDecodeError:
                        continue
                    got.set()
        except (OSError, ValueError):
            pass

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def http_url(self) -> str:
        return f"127.0.0.1:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def is_ready(self) -> bool:
        """``GET /v2/health/ready`` answered 200."""
        try:
            with urllib.request.urlopen(f"http://{self.http_url}/v2/health/ready", timeout=2) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def log_tail(self, chars: int = 2000) -> str:
        """The last ``chars`` characters of the peer's output (Triton's own log)."""
        return "\n".join(self._lines)[-chars:].strip() or "(no output)"

    def stop(self, timeout_s: float = 20.0) -> None:
        """Close the peer's standard input (it stops Triton and exits); SIGTERM, then SIGKILL its group, if not."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            if proc.stdin:
                proc.stdin.close()
        except OSError:
            pass
        for sig, wait in ((None, timeout_s), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            if sig is not None:
                try:
                    os.killpg(proc.pid, sig)
                except (ProcessLookupError, PermissionError):
                    pass
            try:
                proc.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue

    def __enter__(self) -> TritonPeer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# ------------------------------------------------------------------------------------------------------------------
# Inside .venv-triton
# ------------------------------------------------------------------------------------------------------------------
def _version_folder(model_dir: Path, version: int | None) -> Path:
    versions = sorted((int(p.name), p) for p in model_dir.iterdir()
                      if p.is_dir() and p.name.isdigit() and (p / "model.onnx").is_file())
    if not versions:
        raise PeerError(f"{model_dir}: no version folder with a model.onnx (e.g. {model_dir}/1/model.onnx)")
    if version is None:
        return versions[-1][1]
    for v, p in versions:
        if v == version:
            return p
    raise PeerError(f"{model_dir}: no version {version} (have {[v for v, _ in versions]})")


class _TritonStartError(RuntimeError):
    """Triton itself failed to start (not the repository): worth another try."""


def _serve(args: argparse.Namespace) -> None:
    import numpy as np
    import onnxruntime as ort
    from pytriton.decorators import batch
    from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
    from pytriton.triton import Triton, TritonConfig

    from .model_config import read_config, v2_datatype

    model_dir = Path(args.model)
    cfg = read_config(model_dir)
    folder = _version_folder(model_dir, args.version)
    np_types = {"FP32": np.float32, "FP16": np.float16, "FP64": np.float64, "INT64": np.int64, "INT32": np.int32,
                "INT8": np.int8, "UINT8": np.uint8, "BOOL": np.bool_}
    count = sum(g.count or 1 for g in cfg.instance_group) or 1

    def tensors(specs):
        return [Tensor(name=s.name, dtype=np_types[v2_datatype(s.data_type)], shape=tuple(s.dims)) for s in specs]

    out_names = [o.name for o in cfg.output]

    def make_infer():
        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = args.threads, 1
        session = ort.InferenceSession(str(folder / "model.onnx"), opts, providers=["CPUExecutionProvider"])

        def run(**inputs):
            return dict(zip(out_names, session.run(out_names, inputs)))
        return batch(run) if cfg.max_batch_size > 0 else run

    db = cfg.dynamic_batching
    config = ModelConfig(batching=cfg.max_batch_size > 0, max_batch_size=max(cfg.max_batch_size, 1),
                         batcher=DynamicBatcher(max_queue_delay_microseconds=db.max_queue_delay_microseconds,
                                                preferred_batch_size=list(db.preferred_batch_size) or None))
    scratch = tempfile.mkdtemp(prefix="triton-peer-")  # pytriton creates its workspace folder itself
    tc = TritonConfig(http_address="127.0.0.1", http_port=args.http_port, grpc_address="127.0.0.1",
                      grpc_port=args.grpc_port, metrics_address="127.0.0.1", metrics_port=args.metrics_port,
                      allow_sagemaker=False, allow_vertex_ai=False, allow_gpu_metrics=False, exit_timeout_secs=5)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    infer_funcs = [make_infer() for _ in range(count)]  # an ONNX file ONNX Runtime refuses fails here, not in Triton
    inputs, outputs = tensors(cfg.input), tensors(cfg.output)
    try:
        with Triton(config=tc, workspace=str(Path(scratch) / "workspace")) as triton:
            name = cfg.name or model_dir.name
            triton.bind(model_name=name, infer_func=infer_funcs, inputs=inputs,
                        outputs=outputs, model_version=int(folder.name), config=config, strict=True)
            triton.run()
            print(json.dumps({"ready": True, "model": name, "version": folder.name, "instances": count,
                              "max_batch_size": cfg.max_batch_size,
                              "max_queue_delay_us": db.max_queue_delay_microseconds,
                              "preferred_batch_size": list(db.preferred_batch_size), "pid": os.getpid()}), flush=True)
            threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
            stop.wait()
    except Exception as e:  # Triton's own start-up (its processes, sockets, the Python backend's handshake)
        raise _TritonStartError(f"{type(e).__name__}: {e}") from e
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m phase4_production.server.triton_peer", description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, help="a Triton model folder: config.pbtxt + <version>/model.onnx")
    p.add_argument("--version", type=int, default=None)
    p.add_argument("--http-port", type=int, required=True)
    p.add_argument("--grpc-port", type=int, required=True)
    p.add_argument("--metrics-port", type=int, required=True)
    p.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads per instance")
    args = p.parse_args(argv)
    try:
        _serve(args)
    except _TritonStartError as e:
        print(json.dumps({"ready": False, "error": str(e), "retry": True}), flush=True)
        return 1
    except Exception as e:  # the repository: the launcher reports it; Triton's own log is on stdout
        print(json.dumps({"ready": False, "error": f"{type(e).__name__}: {e}"}), flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
