"""Worker processes that run a model's batches (helpers, written in full; Task 4.14 builds the pool on them).

A worker is one model instance (Triton's ``instance_group { count: N }`` gives N of them): its own process, its own
copy of the model, fed whole batches over a pipe. One process per instance, not one thread, so that a crash in a
model (a segfault in a kernel, an out-of-memory kill) takes down one instance and not the server, and so that the
supervisor can see the death: the pipe to the process reaches its end.

The model file says how it runs, as in a Triton repository:

- ``model.onnx`` (``platform: "onnxruntime_onnx"``): an ONNX Runtime session; on ``cuda`` with the CUDA execution
  provider (``onnxruntime-gpu``), which the course's CPU install does not have: asked for, it fails the load, as
  Triton does, rather than run on the CPU unnoticed.
- ``model.pt`` (``platform: "pytorch_libtorch"``): TorchScript, run by PyTorch on the worker's device (``cpu``,
  ``cuda`` or ``cuda:N``, from the config's ``instance_group { kind: KIND_GPU gpus: [...] }``), inputs passed in
  the config's input order, TF32 off: an FP32 model answers in FP32, whatever the GPU (a model that wants FP16 or
  TF32 says so in its own file: Phase 2's lesson, not the server's choice).

The pipe protocol (pickled tuples; arrays go through pickle's out-of-band buffers, no JSON)::

    parent -> worker   ("run", batch_id, {input name: array [rows, ...]})     or None (exit)
    worker -> parent   ("ready", pid)                                         once, after the model is loaded
                       ("failed", "why")                                      instead, when it cannot be loaded
                       ("done", batch_id, {output name: array [rows, ...]})
                       ("error", batch_id, "OnnxRuntimeError: ...")           the model refused the batch

:class:`Worker` is the parent's handle. ``Worker.start()`` starts the process (this file run as a script by the
same interpreter: nothing of the server is forked or imported, so it works the same from a script, a notebook or
pytest) and waits for "ready"; :meth:`Worker.run` sends one batch and waits for its answer or the process's death
(the pipe's end of file), whichever comes first, and says which.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Callable

import numpy as np

__all__ = ["Worker", "WorkerDied", "WorkerFailed", "load_runner", "worker_main"]


class WorkerDied(RuntimeError):
    """The worker process exited (killed, crashed) before answering; its batch was not run, or its answer is lost."""


class WorkerFailed(RuntimeError):
    """The worker is alive but the model raised on the batch (the message is the model's error)."""


Runner = Callable[[dict[str, np.ndarray]], list[np.ndarray]]


def _onnx_runner(model_path: str, output_names: list[str], threads: int, device: str) -> Runner:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    providers: list[Any] = ["CPUExecutionProvider"]
    if device.startswith("cuda"):
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise RuntimeError(f"{device} asked for, but this ONNX Runtime has no CUDAExecutionProvider "
                               "(pip install onnxruntime-gpu, or serve the model with instance_group kind KIND_CPU)")
        index = int(device.partition(":")[2] or 0)
        providers = [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]
    session = ort.InferenceSession(model_path, opts, providers=providers)
    return lambda inputs: session.run(output_names, inputs)


def _torchscript_runner(model_path: str, input_names: list[str], threads: int, device: str) -> Runner:
    import warnings

    import torch

    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError(f"{device} asked for, but PyTorch sees no CUDA device here")
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cudnn.benchmark = True
    torch.set_num_threads(threads)
    with warnings.catch_warnings():  # torch.jit is deprecated in favour of torch.export; Triton serves TorchScript
        warnings.simplefilter("ignore", FutureWarning)
        module = torch.jit.load(model_path, map_location=device).eval()

    def run(inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        args = [torch.from_numpy(np.ascontiguousarray(inputs[n])).to(device, non_blocking=True) for n in input_names]
        with torch.inference_mode():
            out = module(*args)
        outs = out if isinstance(out, (tuple, list)) else [out]
        return [o.detach().cpu().numpy() for o in outs]
    return run


def load_runner(model_path: str, output_names: list[str], input_names: list[str], threads: int = 1,
                device: str = "cpu") -> Runner:
    """The model file as a function ``{input name: array} -> [output arrays, in output_names order]``.

    ``.onnx``: ONNX Runtime; ``.pt``: TorchScript on ``device``. Raises RuntimeError (or the runtime's own error)
    when the file cannot be loaded there.
    """
    if str(model_path).endswith(".pt"):
        return _torchscript_runner(model_path, input_names, threads, device)
    return _onnx_runner(model_path, output_names, threads, device)


def worker_main(conn: Connection, model_path: str, output_names: list[str], threads: int, device: str = "cpu",
                input_names: list[str] | None = None) -> None:
    """The worker process: load the model, say ready (or why not), run batches until told to stop or the pipe
    closes."""
    try:
        run = load_runner(model_path, output_names, list(input_names or []), threads, device)
    except Exception as e:  # noqa: BLE001 - any runtime's refusal is reported, then the process exits
        conn.send(("failed", f"{type(e).__name__}: {e}"))
        return
    conn.send(("ready", os.getpid()))
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):  # the parent went away
            return
        if msg is None:
            return
        _, batch_id, inputs = msg
        try:
            outs = run(inputs)
        except Exception as e:  # the runtime's own exception types
            conn.send(("error", batch_id, f"{type(e).__name__}: {e}"))
            continue
        conn.send(("done", batch_id, dict(zip(output_names, outs))))


@dataclass
class Worker:
    """One worker process serving one model file.

    Attributes:
        model_path: the ``model.onnx`` (or TorchScript ``model.pt``) it runs.
        output_names: the outputs it returns, in order.
        threads: intra-op threads in the worker (ONNX Runtime's, or PyTorch's).
        index: the instance's number in its pool (names the process).
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``: where the instance runs (see ``pool.instance_devices``).
        input_names: the model's inputs in the config's order (a TorchScript model takes them by position).
    """

    model_path: str | Path
    output_names: list[str]
    threads: int = 1
    index: int = 0
    device: str = "cpu"
    input_names: list[str] | None = None
    process: Any = None
    conn: Connection | None = None
    pid: int | None = None
    _batches: int = 0

    def start(self, timeout_s: float = 60.0) -> Worker:
        """Start the process and wait until its session is made.

        Raises:
            WorkerDied: the process could not load the model (the message says why: a broken file, a device this
                machine lacks) or exited before it was ready.
            TimeoutError: not ready within ``timeout_s``.
        """
        ours, theirs = socket.socketpair()
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), str(theirs.fileno()), str(self.model_path),
             json.dumps(list(self.output_names)), str(self.threads), self.device,
             json.dumps(list(self.input_names or []))],
            pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL)
        theirs.close()
        self.conn = Connection(ours.detach())
        if not self.conn.poll(timeout_s):
            self.kill()
            raise TimeoutError(f"worker {self.index} was not ready within {timeout_s:g} s")
        try:
            kind, pid = self.conn.recv()
        except (EOFError, OSError):
            code = self.process.wait(5)
            self.kill()
            raise WorkerDied(f"worker {self.index} exited with code {code} while loading {self.model_path}") from None
        if kind == "failed":
            code = self.process.wait(5)
            self.kill()
            raise WorkerDied(f"worker {self.index} failed while loading {self.model_path} on {self.device} "
                             f"(exit code {code}): {pid}")
        assert kind == "ready"
        self.pid = pid
        return self

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def run(self, inputs: dict[str, np.ndarray], timeout_s: float | None = None) -> dict[str, np.ndarray]:
        """Run one batch in the worker: ``{input: array}`` -> ``{output: array}``, rows in the same order.

        Raises:
            WorkerDied: the process died before answering (killed mid-batch, or already dead).
            WorkerFailed: the model raised on the batch; the worker is still usable.
            TimeoutError: no answer within ``timeout_s`` (the worker is then killed: a hung instance is a dead one).
        """
        if self.conn is None or not self.alive:
            raise WorkerDied(f"worker {self.index} (pid {self.pid}) is not running")
        self._batches += 1
        batch_id = self._batches
        try:
            self.conn.send(("run", batch_id, inputs))
        except (BrokenPipeError, OSError):
            raise WorkerDied(f"worker {self.index} (pid {self.pid}) died before taking its batch") from None
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:  # the pipe's other end is held by the worker alone: its death is an end of file here
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not self.conn.poll(left):
                self.kill()
                raise TimeoutError(f"worker {self.index} (pid {self.pid}) did not answer within {timeout_s:g} s; "
                                   "killed")
            try:
                kind, got_id, payload = self.conn.recv()
            except (EOFError, OSError):
                break
            if got_id != batch_id:  # an answer to a batch whose wait timed out: stale
                continue
            if kind == "error":
                raise WorkerFailed(payload)
            return payload
        code = self.process.wait(5)
        raise WorkerDied(f"worker {self.index} (pid {self.pid}) exited with code {code} during a batch")

    def stop(self, timeout_s: float = 5.0) -> None:
        """Ask the process to exit after its current batch; kill it if it does not within ``timeout_s``."""
        if self.process is None:
            return
        try:
            if self.conn is not None:
                self.conn.send(None)
        except (BrokenPipeError, OSError):
            pass
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            pass
        self.kill()

    def kill(self) -> None:
        """Kill the process (if alive), reap it, and close the pipe."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
        if self.conn is not None:
            self.conn.close()
            self.conn = None


if __name__ == "__main__":  # the worker process: workers.py FD MODEL_PATH OUTPUT_NAMES_JSON THREADS DEVICE INPUTS
    _fd, _path, _names, _threads, _device, _inputs = sys.argv[1:7]
    worker_main(Connection(int(_fd)), _path, json.loads(_names), int(_threads), _device, json.loads(_inputs))
