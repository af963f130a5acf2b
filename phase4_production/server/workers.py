"""Worker processes that run a model's batches (helpers, written in full; Task 4.14 builds the pool on them).

A worker is one model instance (Triton's ``instance_group { count: N }`` gives N of them): its own process, its own
ONNX Runtime session, fed whole batches over a pipe. One process per instance, not one thread, so that a crash in a
model (a segfault in a kernel, an out-of-memory kill) takes down one instance and not the server, and so that the
supervisor can see the death: the pipe to the process reaches its end.

The pipe protocol (pickled tuples; arrays go through pickle's out-of-band buffers, no JSON)::

    parent -> worker   ("run", batch_id, {input name: array [rows, ...]})     or None (exit)
    worker -> parent   ("ready", pid)                                         once, after the session is made
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
from typing import Any

import numpy as np

__all__ = ["Worker", "WorkerDied", "WorkerFailed", "worker_main"]

class WorkerDied(RuntimeError):
    """The worker process exited (killed, crashed) before answering; its batch was not run, or its answer is lost."""


class WorkerFailed(RuntimeError):
    """The worker is alive but the model raised on the batch (the message is the model's error)."""


def worker_main(conn: Connection, model_path: str, output_names: list[str], threads: int) -> None:
    """The worker process: make the session, say ready, run batches until told to stop or the pipe closes."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    session = ort.InferenceSession(model_path, opts, providers=["CPUExecutionProvider"])
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
            outs = session.run(output_names, inputs)
        except Exception as e:  # onnxruntime's own exception types
            conn.send(("error", batch_id, f"{type(e).__name__}: {e}"))
            continue
        conn.send(("done", batch_id, dict(zip(output_names, outs))))


@dataclass
class Worker:
    """One worker process serving one model file.

    Attributes:
        model_path: the ``model.onnx`` it runs.
        output_names: the outputs it returns, in order.
        threads: ONNX Runtime intra-op threads in the worker.
        index: the instance's number in its pool (names the process).
    """

    model_path: str | Path
    output_names: list[str]
    threads: int = 1
    index: int = 0
    process: Any = None
    conn: Connection | None = None
    pid: int | None = None
    _batches: int = 0

    def start(self, timeout_s: float = 60.0) -> Worker:
        """Start the process and wait until its session is made.

        Raises:
            WorkerDied: the process exited before it was ready (e.g. ONNX Runtime cannot load the file).
            TimeoutError: not ready within ``timeout_s``.
        """
        ours, theirs = socket.socketpair()
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), str(theirs.fileno()), str(self.model_path),
             json.dumps(list(self.output_names)), str(self.threads)],
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


if __name__ == "__main__":  # the worker process: workers.py FD MODEL_PATH OUTPUT_NAMES_JSON THREADS
    _fd, _path, _names, _threads = sys.argv[1:5]
    worker_main(Connection(int(_fd)), _path, json.loads(_names), int(_threads))
