"""One worker process per device, and the two pipes to it (helpers, written in full; Task 3.8 uses them).

A *device* is a string: ``"cuda:N"`` (a GPU) or ``"cpu:N"`` (a CPU worker pinned to cores of its own, so
that data-parallel scaling can be measured on any machine). Each worker is a real process started with
``torch.multiprocessing``'s ``spawn`` method (CUDA cannot be used in a forked child). It builds its own
copy of the model from a *factory* (a picklable zero-argument callable returning an ``nn.Module``: a
module-level function or a ``functools.partial`` of one), then answers batches until told to stop::

    parent                                     worker process (device_worker)
    worker.send(7, x)  --- inbox pipe --->     (7, slot 1, B): x is slots[1][:B], in shared memory
                                               y = model(x.to(device)) under inference_mode
    worker.recv()      <-- outbox pipe ---     (7, y, None): y float32 on the CPU, [B, ...]
                                               or (7, None, "RuntimeError: ...") when the model raised

Input batches travel through shared memory: each worker gets a few input *slots* (tensors of
``[max_batch_size, *input_shape]`` in shared memory, handed over once when the worker starts);
``send`` copies the batch into a free slot and sends only its number. A slot is free again once the
worker has answered the batch in it. Answers are small and travel pickled.

Failure is visible at once: the parent keeps only its own end of each pipe, so when a worker dies (killed,
crashed, out of memory) ``recv()`` and ``send()`` raise :class:`WorkerLost` instead of waiting forever.
"""
from __future__ import annotations

import os
import signal
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.multiprocessing as tmp
from torch import nn

__all__ = ["Worker", "WorkerLost", "cpu_devices", "assign_cores", "start_workers", "device_worker"]


class WorkerLost(RuntimeError):
    """The worker process is gone (or its pipe broke): nothing more will come from it."""


def cpu_devices(n: int) -> list[str]:
    """``["cpu:0", ..., "cpu:{n-1}"]``: ``n`` CPU workers (each pinned to cores of its own by ``start_workers``)."""
    if int(n) < 1:
        raise ValueError(f"need at least one device, got {n}")
    return [f"cpu:{i}" for i in range(int(n))]


def assign_cores(devices: list[str], threads_per_worker: int) -> list[tuple[int, ...]]:
    """Disjoint cores for every ``cpu:N`` device (``()`` for a GPU device: its worker is not pinned).

    Cores come from this process's affinity (``os.sched_getaffinity``), ``threads_per_worker`` each, in order.

    Raises:
        ValueError: the CPU workers need more cores than this process may use (two workers on one core
            would measure the core, not the router).
    """
    allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
    cpu = [d for d in devices if d.startswith("cpu")]
    need = len(cpu) * int(threads_per_worker)
    if need > len(allowed):
        raise ValueError(f"{len(cpu)} CPU workers x {threads_per_worker} threads need {need} cores; this process may "
                         f"use {len(allowed)} ({allowed})")
    out, k = [], 0
    for d in devices:
        if d.startswith("cpu"):
            out.append(tuple(allowed[k:k + int(threads_per_worker)]))
            k += int(threads_per_worker)
        else:
            out.append(())
    return out


def device_worker(index: int, device: str, factory: Callable[[], nn.Module], inbox: Any, outbox: Any,
                  threads: int, cores: tuple[int, ...], slots: list[torch.Tensor]) -> None:
    """The worker process's main function: build the model, say ready, answer batches until ``None`` arrives.

    Messages in: ``(batch_id, slot, rows)``, the batch being ``slots[slot][:rows]``. Messages out:
    ``("ready", os.getpid(), None)`` once the model is loaded (or ``("error", None, text)`` if it could not
    be), then one ``(batch_id, y, error)`` per batch received.
    """
    try:
        if cores and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, set(cores))
        torch.set_num_threads(int(threads))
        torch_device = torch.device("cpu" if device.startswith("cpu") else device)
        if torch_device.type == "cuda":
            torch.cuda.set_device(torch_device)
        model = factory().eval().to(torch_device)
    except BaseException:  # noqa: BLE001 - reported to the parent, which raises it in start()
        outbox.send(("error", None, traceback.format_exc(limit=4)))
        return
    outbox.send(("ready", os.getpid(), None))
    while True:
        try:
            msg = inbox.recv()
        except (EOFError, OSError):
            return  # the parent is gone
        if msg is None:
            outbox.send(("stopped", None, None))
            return
        batch_id, slot, rows = msg
        x = slots[slot][:rows]
        try:
            with torch.inference_mode():
                y = model(x.to(torch_device, non_blocking=True)).float().cpu()
            reply = (batch_id, y.numpy(), None)
        except Exception as e:  # noqa: BLE001 - the model's error, reported for this batch only
            reply = (batch_id, None, f"{type(e).__name__}: {e}")
        del x
        outbox.send(reply)


@dataclass
class Worker:
    """The parent's handle on one device's worker process.

    ``send`` and ``recv`` may be called from different threads (one each); neither is safe to call from two
    threads at once.
    """

    index: int
    device: str
    cores: tuple[int, ...]
    process: Any
    pid: int
    _to_worker: Any = field(repr=False)
    _from_worker: Any = field(repr=False)
    _slots: list[torch.Tensor] = field(repr=False, default_factory=list)
    _free: list[int] = field(repr=False, default_factory=list)
    _slot_of: dict[int, int] = field(repr=False, default_factory=dict)
    _send_lock: threading.Condition = field(default_factory=threading.Condition, repr=False)
    _lost: bool = False

    def send(self, batch_id: int, x: torch.Tensor, timeout_s: float = 60.0) -> None:
        """Hand one batch ``x`` ``[B, *input_shape]`` (B <= max_batch_size) to the worker; returns at once.

        The batch is copied into a free shared-memory slot (there is one more slot than batches a router
        keeps in flight, so a slot is normally free at once; otherwise this waits up to ``timeout_s`` for the
        worker to answer one).

        Raises:
            ValueError: ``x`` does not fit a slot (shape, dtype, more than max_batch_size rows).
            WorkerLost: the worker process is gone, or no slot came free within ``timeout_s``.
        """
        slot_shape = tuple(self._slots[0].shape)
        if x.dim() != len(slot_shape) or tuple(x.shape[1:]) != slot_shape[1:] or x.shape[0] > slot_shape[0] \
                or x.dtype != self._slots[0].dtype:
            raise ValueError(f"batch {tuple(x.shape)} {x.dtype} does not fit the worker's slots {slot_shape} "
                             f"{self._slots[0].dtype}")
        with self._send_lock:
            if not self._send_lock.wait_for(lambda: self._free or self._lost, timeout_s) or self._lost:
                raise WorkerLost(f"worker {self.index} ({self.device}, pid {self.pid}) is gone or stuck: no input "
                                 f"slot came free")
            slot = self._free.pop()
            self._slot_of[int(batch_id)] = slot
            self._slots[slot][:x.shape[0]].copy_(x)
            try:
                self._to_worker.send((int(batch_id), slot, int(x.shape[0])))
            except (OSError, EOFError, ValueError) as e:  # BrokenPipe, closed handle
                self._lost = True
                raise WorkerLost(f"worker {self.index} ({self.device}, pid {self.pid}) is gone: {e}") from None

    def recv(self) -> tuple[int, torch.Tensor | None, str | None]:
        """Block until the worker answers a batch: ``(batch_id, y, None)`` or ``(batch_id, None, error_text)``.

        ``batch_id`` is ``None`` once the worker has stopped after ``stop()``.

        Raises:
            WorkerLost: the worker process died (its pipe reached end of file).
        """
        try:
            batch_id, y, err = self._from_worker.recv()
        except (OSError, EOFError, ValueError) as e:
            with self._send_lock:
                self._lost = True
                self._send_lock.notify_all()
            self.process.join(1.0)
            raise WorkerLost(f"worker {self.index} ({self.device}, pid {self.pid}) died "
                             f"(exit code {self.process.exitcode}): {type(e).__name__}") from None
        if batch_id == "stopped":
            return None, None, None
        with self._send_lock:
            slot = self._slot_of.pop(batch_id, None)
            if slot is not None:
                self._free.append(slot)
                self._send_lock.notify_all()
        return batch_id, (torch.from_numpy(y) if y is not None else None), err

    def alive(self) -> bool:
        return self.process.is_alive()

    def kill(self) -> None:
        """SIGKILL the worker (what a crashed GPU or an OOM killer looks like to the parent)."""
        if self.process.is_alive():
            os.kill(self.pid, signal.SIGKILL)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Ask the worker to finish (after the batches already sent), wait ``timeout_s``, then kill it; close the pipes."""
        try:
            with self._send_lock:
                self._to_worker.send(None)
        except (OSError, EOFError, ValueError):
            pass
        self.process.join(timeout_s)
        if self.process.is_alive():
            self.kill()
            self.process.join(2.0)
        self.close_pipes()

    def close_pipes(self) -> None:
        for conn in (self._to_worker, self._from_worker):
            try:
                conn.close()
            except OSError:
                pass


def start_workers(factory: Callable[[], nn.Module], devices: list[str], *, input_shape: tuple[int, ...],
                  max_batch_size: int, in_flight: int = 2, dtype: torch.dtype = torch.float32,
                  threads_per_worker: int = 1, timeout_s: float = 120.0) -> list[Worker]:
    """Spawn one worker per device and wait until every one has loaded its model.

    Args:
        factory: picklable, zero arguments, returns the ``nn.Module`` each worker serves (called in the worker).
        devices: e.g. ``cpu_devices(2)`` or ``["cuda:0", "cuda:1"]``.
        input_shape: one request's input shape (no batch dimension).
        max_batch_size: most rows per batch (the size of each shared-memory input slot).
        in_flight: most batches the caller keeps unanswered per worker (each worker gets ``in_flight + 1`` slots).
        dtype: the inputs' dtype.
        threads_per_worker: PyTorch threads per worker (CPU workers are pinned to that many cores each).
        timeout_s: the longest wait for all workers to be ready.

    Returns:
        One ``Worker`` per device, in order, each ready.

    Raises:
        ValueError: not enough cores for the CPU workers, or a device that is neither ``cpu:N`` nor ``cuda:N``.
        RuntimeError: a worker failed to start (its traceback in the message) or was not ready in time;
            every worker already started is stopped first.
    """
    for d in devices:
        kind = d.split(":")[0]
        if kind not in ("cpu", "cuda"):
            raise ValueError(f"device {d!r}: expected 'cpu:N' or 'cuda:N'")
    cores = assign_cores(devices, threads_per_worker)
    ctx = tmp.get_context("spawn")
    workers: list[Worker] = []
    try:
        for i, (device, pinned) in enumerate(zip(devices, cores)):
            to_child_r, to_child_w = ctx.Pipe(duplex=False)
            from_child_r, from_child_w = ctx.Pipe(duplex=False)
            slots = [torch.zeros(int(max_batch_size), *input_shape, dtype=dtype).share_memory_()
                     for _ in range(int(in_flight) + 1)]
            proc = ctx.Process(target=device_worker, name=f"device-worker-{i}",
                               args=(i, device, factory, to_child_r, from_child_w, threads_per_worker, pinned, slots),
                               daemon=True)
            proc.start()
            to_child_r.close()      # keep only the parent's ends: a dead worker means EOF, not a hang
            from_child_w.close()
            workers.append(Worker(i, device, pinned, proc, proc.pid, to_child_w, from_child_r, slots,
                                  list(range(len(slots)))))
        deadline = time.monotonic() + timeout_s
        for w in workers:
            if not w._from_worker.poll(max(0.0, deadline - time.monotonic())):
                raise RuntimeError(f"worker {w.index} ({w.device}) was not ready within {timeout_s:g} s")
            try:
                kind, _, text = w._from_worker.recv()
            except (EOFError, OSError):
                raise RuntimeError(f"worker {w.index} ({w.device}) died while starting "
                                   f"(exit code {w.process.exitcode})") from None
            if kind != "ready":
                raise RuntimeError(f"worker {w.index} ({w.device}) could not load its model:\n{text}")
        return workers
    except BaseException:
        for w in workers:
            w.stop(timeout_s=1.0)
        raise
