"""Configuration, results and errors shared by every Phase 3 task (helpers, written in full).

The names follow Triton Inference Server's ``dynamic_batching`` block of ``config.pbtxt``, so the
settings you tune here are the ones you will tune there:

    dynamic_batching {
      preferred_batch_size: [ 4, 8 ]             -> BatcherConfig.preferred_batch_sizes
      max_queue_delay_microseconds: 5000         -> BatcherConfig.max_queue_delay_ms (milliseconds here)
      default_queue_policy { max_queue_size: 256 } -> BatcherConfig.max_queue_size
    }
    max_batch_size: 16                           -> BatcherConfig.max_batch_size

The graders read these classes by attribute name: keep the names, fields and units as they are.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch

__all__ = [
    "MIN_SAMPLES",
    "BatcherError",
    "InvalidRequest",
    "Overloaded",
    "BatcherClosed",
    "ModelError",
    "BatcherConfig",
    "BatcherStats",
    "ModelSpec",
    "LoadReport",
]

#: Fewest samples for a percentile to count as measured rather than estimated: MLPerf LoadGen's
#: early-stopping minimums (quantile -> samples), as in Phase 1.
MIN_SAMPLES: dict[int, int] = {90: 64, 95: 130, 99: 662}


# ---------------------------------------------------------------------------------------------------
# Errors: what a client of the batcher sees (Task 3.2). Each carries a sentence a caller can act on.
# ---------------------------------------------------------------------------------------------------
class BatcherError(RuntimeError):
    """Base class of every error the batcher raises or sets on a future."""


class InvalidRequest(BatcherError, ValueError):
    """The request's input has the wrong type, shape or dtype; raised by ``submit``, nothing queued."""


class Overloaded(BatcherError):
    """The queue is full (``max_queue_size`` requests waiting); raised by ``submit``: retry later."""


class BatcherClosed(BatcherError):
    """``submit`` on a batcher that is not running, or a queued request dropped by ``close(drain=False)``."""


class ModelError(BatcherError):
    """The model raised (or returned the wrong number of rows) on a batch; set on that batch's futures.

    The model's own exception is attached as ``__cause__``.
    """


# ---------------------------------------------------------------------------------------------------
# Task 3.1: configuration
# ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BatcherConfig:
    """How a dynamic batcher trades latency for throughput (Triton's ``dynamic_batching`` names).

    Attributes:
        max_batch_size: most requests per model call (>= 1). Triton: ``max_batch_size``.
        max_queue_delay_ms: longest time the OLDEST waiting request may wait for more requests to
            join its batch, in milliseconds (>= 0; 0 = run whatever is there). Triton:
            ``max_queue_delay_microseconds`` (x 1000).
        max_queue_size: most requests waiting in the queue (>= 1); one more is refused with
            ``Overloaded``. Triton: ``default_queue_policy.max_queue_size``.
        preferred_batch_sizes: batch sizes to prefer (each in 1..max_batch_size; stored sorted): a
            batch is the largest of them that the waiting requests fill, and goes at once when the
            largest one is full; with fewer waiting than the smallest, all of them go when the delay
            expires. Empty: any size up to max_batch_size. Triton: ``preferred_batch_size``.
    """

    max_batch_size: int = 16
    max_queue_delay_ms: float = 5.0
    max_queue_size: int = 256
    preferred_batch_sizes: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.max_batch_size, bool) or not isinstance(self.max_batch_size, int) \
                or self.max_batch_size < 1:
            raise ValueError(f"max_batch_size must be an int >= 1, got {self.max_batch_size!r}")
        if not isinstance(self.max_queue_delay_ms, (int, float)) or not math.isfinite(self.max_queue_delay_ms) \
                or self.max_queue_delay_ms < 0:
            raise ValueError(f"max_queue_delay_ms must be a finite number >= 0, got {self.max_queue_delay_ms!r}")
        if isinstance(self.max_queue_size, bool) or not isinstance(self.max_queue_size, int) \
                or self.max_queue_size < 1:
            raise ValueError(f"max_queue_size must be an int >= 1, got {self.max_queue_size!r}")
        sizes = tuple(sorted(set(int(s) for s in self.preferred_batch_sizes)))
        bad = [s for s in sizes if not 1 <= s <= self.max_batch_size]
        if bad:
            raise ValueError(f"preferred_batch_sizes {bad} are outside 1..max_batch_size={self.max_batch_size}")
        object.__setattr__(self, "preferred_batch_sizes", sizes)

    @property
    def max_queue_delay_s(self) -> float:
        """The delay in seconds (what ``threading.Condition.wait`` takes)."""
        return self.max_queue_delay_ms / 1000.0


# ---------------------------------------------------------------------------------------------------
# Tasks 3.1-3.3: statistics a batcher keeps about itself
# ---------------------------------------------------------------------------------------------------
@dataclass
class BatcherStats:
    """Counters since ``start()`` (the graders check them against what they sent and observed).

    Attributes:
        submitted: requests ``submit`` accepted (queued).
        rejected: requests ``submit`` refused (InvalidRequest, Overloaded, BatcherClosed).
        completed: futures resolved with a result.
        failed: accepted requests whose future got an exception or was cancelled.
        batches: model calls made.
        queue_depth: requests waiting right now.
        batch_sizes: histogram, batch size -> number of model calls of that size.
    """

    submitted: int = 0
    rejected: int = 0
    completed: int = 0
    failed: int = 0
    batches: int = 0
    queue_depth: int = 0
    batch_sizes: dict[int, int] = field(default_factory=dict)

    @property
    def mean_batch_size(self) -> float:
        """Requests per model call (nan before the first call)."""
        n = sum(self.batch_sizes.values())
        return sum(k * v for k, v in self.batch_sizes.items()) / n if n else float("nan")


# ---------------------------------------------------------------------------------------------------
# Task 3.3: one model of a pool
# ---------------------------------------------------------------------------------------------------
@dataclass
class ModelSpec:
    """One model served by a ``ModelPool`` (a Triton model repository entry, in miniature).

    Attributes:
        name: the name clients submit to (non-empty, unique in the pool).
        model_fn: ``model_fn(batch) -> outputs``: a float tensor ``[B, *input_shape]`` in, a tensor
            whose first dimension is B out (row i belongs to request i).
        input_shape: shape of ONE request's input, without the batch dimension, e.g. ``(1, 32, 32)``.
        dtype: the input dtype every request must have.
        config: this model's batching settings (None: the pool's default).
        device: where ``model_fn`` computes, ``"cpu"`` or ``"cuda"`` / ``"cuda:N"``. On a CUDA device
            the pool gives the model its own CUDA stream, so models overlap on the GPU.
    """

    name: str
    model_fn: Callable[[torch.Tensor], torch.Tensor]
    input_shape: tuple[int, ...]
    dtype: torch.dtype = torch.float32
    config: BatcherConfig | None = None
    device: str = "cpu"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name must be a non-empty string, got {self.name!r}")
        if not callable(self.model_fn):
            raise ValueError(f"model_fn of {self.name!r} is not callable")
        self.input_shape = tuple(int(d) for d in self.input_shape)
        if not self.input_shape or any(d < 1 for d in self.input_shape):
            raise ValueError(f"input_shape of {self.name!r} must be positive sizes, got {self.input_shape}")
        if not isinstance(self.dtype, torch.dtype):
            raise ValueError(f"dtype of {self.name!r} must be a torch.dtype, got {self.dtype!r}")
        if not (self.device == "cpu" or self.device.startswith("cuda")):
            raise ValueError(f"device of {self.name!r} must be 'cpu' or 'cuda[:N]', got {self.device!r}")


# ---------------------------------------------------------------------------------------------------
# Task 3.4: what a load test reports
# ---------------------------------------------------------------------------------------------------
@dataclass
class LoadReport:
    """One load test, like a line of Triton's perf_analyzer or an MLPerf Server-scenario summary.

    Latencies (ms) are of the completed requests only; a failed request (refused by ``submit``, or
    whose future raised or timed out) is counted in ``failed`` and has no latency.

    Attributes:
        mode: ``"closed_loop"`` or ``"poisson"``.
        requests: requests sent (``completed + failed``).
        completed, failed: see above.
        duration_s: from the first send to the last answer (or failure), in seconds.
        throughput_per_s: ``completed / duration_s`` (answers per second).
        mean_ms, p50_ms, p90_ms, p95_ms, p99_ms, max_ms: latency statistics of the completed
            requests (numpy's linear percentiles; nan when nothing completed).
        concurrency: closed loop: requests kept in flight; None for Poisson.
        offered_rate_per_s: Poisson: the arrival rate asked for; None for closed loop.
        latencies_ms: every completed request's latency, in request order.
    """

    mode: str
    requests: int
    completed: int
    failed: int
    duration_s: float
    throughput_per_s: float
    mean_ms: float
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    concurrency: int | None = None
    offered_rate_per_s: float | None = None
    latencies_ms: list[float] = field(default_factory=list, repr=False)

    def percentile_is_estimate(self, q: int) -> bool:
        """True when ``completed`` is below LoadGen's minimum for percentile ``q`` (90, 95 or 99).

        Raises:
            ValueError: ``q`` is not 90, 95 or 99.
        """
        if q not in MIN_SAMPLES:
            raise ValueError(f"no sample minimum for p{q}; known: {sorted(MIN_SAMPLES)}")
        return self.completed < MIN_SAMPLES[q]

    def summary(self) -> str:
        """One line for people: throughput and percentiles, estimates labelled."""
        def pct(q: int) -> str:
            v = getattr(self, f"p{q}_ms")
            return f"p{q} {v:.1f} ms" + (" (estimate)" if self.percentile_is_estimate(q) else "")

        load = (f"concurrency {self.concurrency}" if self.mode == "closed_loop"
                else f"{self.offered_rate_per_s:g} req/s offered")
        return (f"{self.mode} ({load}): {self.completed}/{self.requests} ok, {self.throughput_per_s:.1f} req/s, "
                f"p50 {self.p50_ms:.1f} ms, {pct(95)}, {pct(99)}")

    @classmethod
    def from_latencies(cls, mode: str, latencies_ms: Sequence[float], *, failed: int, duration_s: float,
                       concurrency: int | None = None, offered_rate_per_s: float | None = None) -> "LoadReport":
        """Build a report from the completed requests' latencies (ms) and the failure count."""
        lat = [float(v) for v in latencies_ms]
        arr = np.asarray(lat, dtype=np.float64)
        if arr.size:
            p50, p90, p95, p99 = (float(v) for v in np.percentile(arr, [50, 90, 95, 99]))
            mean, mx = float(arr.mean()), float(arr.max())
        else:
            p50 = p90 = p95 = p99 = mean = mx = float("nan")
        throughput = len(lat) / duration_s if duration_s > 0 else float("nan")
        return cls(mode=mode, requests=len(lat) + int(failed), completed=len(lat), failed=int(failed),
                   duration_s=float(duration_s), throughput_per_s=throughput, mean_ms=mean, p50_ms=p50,
                   p90_ms=p90, p95_ms=p95, p99_ms=p99, max_ms=mx, concurrency=concurrency,
                   offered_rate_per_s=offered_rate_per_s, latencies_ms=lat)

