"""What the grader serves through the learner's ``DeviceRouter`` (Task 3.8), and how it sees where work went.

The learner's router starts its workers with the course's ``workers.start_workers`` and the grader's
*factory*: :class:`CountingFactory` builds the model in each worker process wrapped in :class:`Counted`,
which records, in memory shared with the grader (a ``multiprocessing`` array), which process computed how
many rows. So the grader knows the share of the load each device really got, and each worker's process
id, from its own record, never from the router's ``stats()``.
"""
from __future__ import annotations

import os
import time
from typing import Any

import torch
import torch.multiprocessing as tmp
from torch import nn

from ..batching.workloads import build

__all__ = ["SLOTS", "CountingFactory", "Counted", "WorkerRecord", "MachineScaling"]

#: Most worker processes one record can follow.
SLOTS = 16
#: Per worker: pid, rows, calls, microseconds spent in the model's forward (wall clock, in the worker).
FIELDS = 4


class Counted(nn.Module):
    """The model, counting its rows and calls in the shared record under this process's id."""

    def __init__(self, model: nn.Module, record: Any):
        super().__init__()
        self.model, self.record = model, record

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = time.perf_counter_ns()
        y = self.model(x)
        busy_us = (time.perf_counter_ns() - t) // 1000
        pid = os.getpid()
        with self.record.get_lock():
            arr = self.record.get_obj()
            for k in range(SLOTS):
                if arr[FIELDS * k] in (0, pid):
                    arr[FIELDS * k] = pid
                    arr[FIELDS * k + 1] += int(x.shape[0])
                    arr[FIELDS * k + 2] += 1
                    arr[FIELDS * k + 3] += busy_us
                    break
        return y


class CountingFactory:
    """A picklable model factory for the learner's router: ``build(name)`` wrapped in :class:`Counted`."""

    def __init__(self, name: str, record: Any):
        self.name, self.record = name, record

    def __call__(self) -> nn.Module:
        model, _ = build(self.name)
        return Counted(model, self.record)


class WorkerRecord:
    """The shared record one router's workers write to: process id -> rows and calls."""

    def __init__(self) -> None:
        self.array = tmp.get_context("spawn").Array("q", FIELDS * SLOTS)

    def factory(self, name: str) -> CountingFactory:
        return CountingFactory(name, self.array)

    def snapshot(self) -> dict[int, tuple[int, int]]:
        """``{pid: (rows, calls)}`` for every worker that computed at least once."""
        with self.array.get_lock():
            a = list(self.array.get_obj())
        return {a[FIELDS * k]: (a[FIELDS * k + 1], a[FIELDS * k + 2]) for k in range(SLOTS) if a[FIELDS * k]}

    def busy_ms(self) -> dict[int, float]:
        """``{pid: ms}`` each worker spent computing (a worker that lost its core to another process takes longer
        per row: a router that follows the work gives it fewer rows, and about as much time)."""
        with self.array.get_lock():
            a = list(self.array.get_obj())
        return {a[FIELDS * k]: a[FIELDS * k + 3] / 1000.0 for k in range(SLOTS) if a[FIELDS * k]}

    def reset(self) -> None:
        with self.array.get_lock():
            arr = self.array.get_obj()
            for k in range(SLOTS):
                arr[FIELDS * k + 1] = arr[FIELDS * k + 2] = arr[FIELDS * k + 3] = 0


def _machine_worker(name: str, device: str, core: int | None, batch: int, conn: Any) -> None:
    """One of the grader's own processes: the model at ``batch`` in a loop for as long as told, no router."""
    if core is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {core})
    torch.set_num_threads(1)
    model, shape = build(name)
    dev = torch.device(device)
    model = model.to(dev)
    x = torch.randn(batch, *shape, device=dev)
    with torch.inference_mode():
        model(x)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        conn.send("ready")
        while True:
            msg = conn.recv()
            if msg is None:
                return
            start_at, seconds = msg
            while time.time() < start_at:
                time.sleep(0.0005)
            rows, t0 = 0, time.perf_counter()
            while time.perf_counter() - t0 < seconds:
                model(x)
                if dev.type == "cuda":
                    torch.cuda.synchronize(dev)
                rows += batch
            conn.send(rows / (time.perf_counter() - t0))


class MachineScaling:
    """What the machine itself gives: ``n`` of the grader's processes running the model side by side, no router.

    The same model, batch size, thread count and core pinning as the learner's workers, so
    their rates give the ceiling a router can reach on this machine at this moment (a neighbour that
    takes a core lowers both). The processes stay up between rounds and idle (blocked on a pipe) while the
    learner's router is measured. ``rates(1, s)`` and ``rates(n, s)`` give the machine's own scaling.
    """

    def __init__(self, name: str, devices: list[str], *, batch: int = 16, timeout_s: float = 120.0):
        ctx = tmp.get_context("spawn")
        allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        self.procs, self.conns = [], []
        for i, device in enumerate(devices):
            parent, child = ctx.Pipe()
            core = allowed[i] if device.startswith("cpu") and i < len(allowed) else None
            p = ctx.Process(target=_machine_worker, args=(name, "cpu" if device.startswith("cpu") else device, core,
                                                          batch, child), daemon=True, name=f"grader-machine-{i}")
            p.start()
            child.close()
            self.procs.append(p)
            self.conns.append(parent)
        for c in self.conns:
            if not c.poll(timeout_s):
                self.close()
                raise RuntimeError("the grader's own scaling processes did not start")
            c.recv()

    def rates(self, n: int, seconds: float) -> list[float]:
        """Rows per second of each of the first ``n`` processes, run together for ``seconds``."""
        start_at = time.time() + 0.05
        for c in self.conns[:n]:
            c.send((start_at, seconds))
        return [c.recv() for c in self.conns[:n]]

    def close(self) -> None:
        for c, p in zip(self.conns, self.procs):
            try:
                c.send(None)
            except OSError:
                pass
            p.join(5)
            if p.is_alive():
                p.kill()
                p.join(2)
            c.close()
