"""Workloads the Phase 3 grader serves through the learner's batcher, and what it checks them with.

* :class:`Instrumented` wraps a model as the ``model_fn`` the learner's batcher calls: it logs every
  call (when, how many rows, which requests, by their first input value) with the grader's clock,
  and can be told to raise on a marked ("poisoned") input.
* :func:`expected_outputs` is the truth: the same model run by the grader on each input.
* :func:`build` gives the models by name: catalog models (``digits_cnn``, ``digits_resnet18``,
  ``resnet50``) and small grader-defined ones with seeded weights.
* :class:`FakeServer` is an M/G/infinity server with known service times, to check the learner's
  load generator against what really happened.
"""
from __future__ import annotations

import heapq
import random
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from ...harness.settle import settled
from ...harness.timing import now_ns

__all__ = ["POISON", "SHORT", "Instrumented", "build", "expected_outputs", "compare", "tags_of", "fresh_inputs",
           "run_problem", "unbatched_answers", "batched_run_problem", "SleepModel", "FakeServer", "chain_text",
           "thread_count_settles"]

#: An input whose first element is this value makes an Instrumented(poison=True) model raise.
POISON = 12345.0
#: An input whose first element is this value makes an Instrumented(short=True) model return one row too few.
SHORT = 23456.0


def tags_of(x: torch.Tensor) -> list[float]:
    """Each row's first element: the grader's tag for which request a row came from."""
    return x.reshape(x.shape[0], -1)[:, 0].tolist()


class Instrumented:
    """``model_fn`` for the learner's batcher: the model, under inference_mode, with a call log.

    ``calls`` holds ``(start_ns, end_ns, batch_size, tags)`` per call, from any thread. With
    ``poison=True`` a batch holding an input whose first element is :data:`POISON` raises; with
    ``short=True`` a batch holding one whose first element is :data:`SHORT` gets ``B - 1`` rows back
    (the last row dropped), as a model with a bug in its output handling would return.
    """

    def __init__(self, model: nn.Module | Callable, name: str, *, device: str = "cpu", poison: bool = False,
                 short: bool = False):
        self.model, self.name, self.device, self.poison, self.short = model, name, device, poison, short
        self.calls: list[tuple[int, int, int, list[float]]] = []
        self._lock = threading.Lock()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        t0 = now_ns()
        tags = tags_of(x)
        if self.poison and POISON in tags:
            with self._lock:
                self.calls.append((t0, now_ns(), len(tags), tags))
            raise RuntimeError("grader poison: this batch holds an input marked to make the model fail")
        with torch.inference_mode():
            y = self.model(x.to(self.device)).float().cpu()
        with self._lock:
            self.calls.append((t0, now_ns(), len(tags), tags))
        return y[:-1] if self.short and SHORT in tags else y

    def intervals(self) -> list[tuple[str, int, int]]:
        with self._lock:
            return [(self.name, s, e) for s, e, _, _ in self.calls]

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()


def _seeded(model: nn.Module, seed: int, scale: float = 0.1) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * scale)
    return model.eval()


def build(name: str, device: str = "cpu") -> tuple[nn.Module, tuple[int, ...]]:
    """A model by name and the per-request input shape it is served with."""
    from labdata import catalog

    if name == "digits_cnn":
        m, shape = catalog.get("digits_cnn").model, (1, 32, 32)
    elif name == "digits_resnet18":
        m, shape = catalog.get("digits_resnet18").model, (3, 64, 64)
    elif name == "digits_resnet18_40":
        m, shape = catalog.get("digits_resnet18").model, (3, 40, 40)
    elif name == "resnet50":
        m, shape = catalog.build("resnet50"), (3, 224, 224)
    elif name == "small_cnn":
        m = _seeded(nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            nn.Linear(64, 10)), seed=3, scale=0.1)
        shape = (3, 48, 48)
    elif name == "mlp":
        m = _seeded(nn.Sequential(nn.Linear(1024, 4096), nn.ReLU(), nn.Linear(4096, 4096), nn.ReLU(),
                                  nn.Linear(4096, 10)), seed=4, scale=0.02)
        shape = (1024,)
    else:
        raise ValueError(name)
    return m.eval().to(device), shape


def fresh_inputs(n: int, shape: tuple[int, ...], seed: int | None = None) -> torch.Tensor:
    """``n`` random inputs, each with a distinct first element (its tag), never :data:`POISON`."""
    g = torch.Generator().manual_seed(seed if seed is not None else random.SystemRandom().randrange(2**31))
    x = torch.randn(n, *shape, generator=g)
    flat = x.view(n, -1)
    # distinct tags in [-2, 2), spaced at least 4 / n apart: ordinary input values, exactly representable
    flat[:, 0] = (torch.randperm(n, generator=g).float() + 0.5 * torch.rand(n, generator=g)) * (4.0 / n) - 2.0
    return x


def expected_outputs(model: nn.Module, xs: torch.Tensor, device: str = "cpu", chunk: int = 64) -> torch.Tensor:
    """The grader's truth: the model on every input (in chunks; eval mode is batch-independent)."""
    outs = []
    with torch.inference_mode():
        for i in range(0, xs.shape[0], chunk):
            outs.append(model(xs[i:i + chunk].to(device)).float().cpu())
    return torch.cat(outs)


def compare(outputs: list[Any], want: torch.Tensor, atol: float) -> tuple[list[int], float]:
    """Indices whose output is missing, mis-shaped or off by more than ``atol``; and the worst difference."""
    bad, worst = [], 0.0
    for i, y in enumerate(outputs):
        if not isinstance(y, torch.Tensor) or tuple(y.shape) != tuple(want.shape[1:]):
            bad.append(i)
            continue
        d = float((y.detach().float().cpu() - want[i]).abs().max())
        if not d <= atol:   # NaN counts as wrong
            bad.append(i)
        worst = max(worst, d) if d == d else float("inf")
    return bad, worst


def run_problem(run: Any, want: torch.Tensor, atol: float) -> str | None:
    """The first problem of a load run (a ``LoadRun``) against the grader's answers ``want`` ``[n, ...]``:
    a request that failed, or whose output is missing, mis-shaped or off by more than ``atol``; None if none."""
    n = len(want)
    failed = [i for i in range(n) if run.errors[i] is not None]
    if failed:
        e = run.errors[failed[0]]
        return f"{len(failed)} of {n} requests got no answer (first: request {failed[0]}: {type(e).__name__}: {str(e)[:120]})"
    bad, worst = compare(run.outputs, want, atol)
    if bad:
        return (f"{len(bad)} of {n} requests got a wrong answer (first: request {bad[0]}; worst |difference| from the "
                f"model run by the grader on that input alone {worst:.3g}, allowed {atol:g})")
    return None


def unbatched_answers(model: nn.Module, xs: torch.Tensor, ref: Any, device: str = "cpu") -> torch.Tensor:
    """The grader's answer to each request alone: what its one-request-per-call server (a ``LoadRun``) returned,
    or, where that run has no answer, the model on that input alone. ``[n, ...]`` float32 on the CPU."""
    outs = []
    for i, y in enumerate(ref.outputs):
        if ref.errors[i] is None and isinstance(y, torch.Tensor):
            outs.append(y.detach().float().cpu())
        else:
            with torch.inference_mode():
                outs.append(model(xs[i:i + 1].to(device))[0].float().cpu())
    return torch.stack(outs)


def batched_run_problem(model: nn.Module, xs: torch.Tensor, ref: Any, run: Any, device: str, atol: float) -> str | None:
    """``run`` (the learner's batcher on ``xs``) against ``ref`` (the grader's unbatched server on the same ``xs``):
    every request's answer within ``atol`` of the grader's unbatched answer (:func:`run_problem`)."""
    return run_problem(run, unbatched_answers(model, xs, ref, device), atol)


class SleepModel:
    """A model whose every call takes ``ms`` (sleeping, so it leaves the CPU to the clients):
    ``[B, D] -> [B, 4]``, row i = 2 x the first four values of input i."""

    def __init__(self, ms: float):
        self.ms = ms
        self.calls: list[tuple[int, int, int]] = []

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        t0 = now_ns()
        time.sleep(self.ms / 1000)
        y = x.reshape(x.shape[0], -1)[:, :4] * 2
        self.calls.append((t0, now_ns(), x.shape[0]))
        return y


def chain_text(e: BaseException | None, depth: int = 4) -> str:
    """The messages of an exception and of its causes / contexts, for "is the model's error in it"."""
    parts = []
    while e is not None and depth > 0:
        parts.append(f"{type(e).__name__}: {e}")
        e = e.__cause__ or e.__context__
        depth -= 1
    return " <- ".join(parts)


def thread_count_settles(baseline: int, timeout_s: float = 2.0) -> int:
    """Wait up to ``timeout_s`` for ``threading.active_count()`` to fall back to ``baseline``."""
    return settled(threading.active_count, lambda n: n <= baseline, timeout_s)


@dataclass
class _Job:
    due_ns: int
    index: int
    future: Future


class FakeServer:
    """An M/G/infinity server: request k is answered ``service_ms(k)`` after it arrives, whatever else
    is in flight. It records the truth the learner's load generator must report: per request the
    arrival and answer times, the most requests in flight, and which were refused (``refuse(k)``)."""

    def __init__(self, service_ms: Callable[[random.Random], float], *, seed: int,
                 refuse: Callable[[int], bool] = lambda k: False):
        self.rng = random.Random(seed)
        self.service_ms, self.refuse = service_ms, refuse
        self.arrivals: list[int] = []
        self.answered: dict[int, int] = {}
        self.refused: list[int] = []
        self.in_flight = self.max_in_flight = 0
        self._heap: list[tuple[int, int, _Job]] = []
        self._cond = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._loop, name="grader-fake-server", daemon=True)
        self._thread.start()

    def submit(self, x: Any) -> Future:
        t = now_ns()
        with self._cond:
            k = len(self.arrivals)
            self.arrivals.append(t)
            if self.refuse(k):
                self.refused.append(k)
                raise RuntimeError("fake server: request refused (overloaded)")
            fut: Future = Future()
            job = _Job(t + int(self.service_ms(self.rng) * 1e6), k, fut)
            heapq.heappush(self._heap, (job.due_ns, k, job))
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self._cond.notify()
        return fut

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._stop and (not self._heap or self._heap[0][0] > now_ns()):
                    self._cond.wait(None if not self._heap else max(0.0, (self._heap[0][0] - now_ns()) / 1e9))
                if self._stop:
                    return
                _, k, job = heapq.heappop(self._heap)
                self.in_flight -= 1
                self.answered[k] = now_ns()
            job.future.set_result(k)

    def latencies_ms(self) -> list[float]:
        with self._cond:
            return [(self.answered[k] - self.arrivals[k]) / 1e6 for k in sorted(self.answered)]

    def close(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        self._thread.join(5.0)
