"""Configuration, results and errors shared by every task of Phase 3's ``gpu`` part (helpers, written in full).

The graders read these classes by attribute name: keep the names, fields and units as they are.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

__all__ = [
    "MemoryModel",
    "RouterConfig",
    "RouterStats",
    "RouterError",
    "RouterClosed",
    "NoDeviceLeft",
    "WorkerFailed",
]


# ---------------------------------------------------------------------------------------------------
# Task 3.7: a forward pass's peak memory as a straight line in the batch size
# ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MemoryModel:
    """``peak(batch) = fixed_bytes + bytes_per_sample * batch``: the peak memory of one forward pass.

    Weights are already resident before the forward and are not counted; what a forward allocates is
    its activations (linear in the batch: every sample carries its own feature maps) and a little that
    does not depend on the batch (workspaces, the output of small layers), which the fit's intercept
    absorbs.

    Attributes:
        fixed_bytes: the intercept, in bytes (may be negative when a small batch under-uses a workspace).
        bytes_per_sample: the slope, in bytes per sample (> 0).
        batch_sizes: the batch sizes the line was fitted on, e.g. ``(2, 8)``.
        measured_bytes: the peak measured at each of ``batch_sizes``, in bytes.
    """

    fixed_bytes: float
    bytes_per_sample: float
    batch_sizes: tuple[int, ...] = ()
    measured_bytes: tuple[int, ...] = ()

    def predict(self, batch_size: int) -> int:
        """Predicted peak bytes of one forward at ``batch_size`` (>= 1), rounded to an int (never < 0)."""
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        return max(0, round(self.fixed_bytes + self.bytes_per_sample * int(batch_size)))

    def max_batch(self, budget_bytes: int) -> int:
        """Largest batch whose predicted peak fits ``budget_bytes`` (0 when not even batch 1 fits)."""
        if self.bytes_per_sample <= 0:
            raise ValueError(f"bytes_per_sample must be > 0 to invert the model, got {self.bytes_per_sample}")
        return max(0, math.floor((int(budget_bytes) - self.fixed_bytes) / self.bytes_per_sample))


# ---------------------------------------------------------------------------------------------------
# Task 3.8: a router over devices
# ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RouterConfig:
    """How a ``DeviceRouter`` batches and serves (one worker process per device).

    Attributes:
        max_batch_size: most requests per model call on one device (>= 1).
        max_queue_delay_ms: longest time the oldest request waiting for a device may wait for more to
            join its batch, in milliseconds (>= 0), as in Phase 3a's ``BatcherConfig``.
        threads_per_worker: PyTorch intra-op threads in each worker process (>= 1). On a CPU "device" the
            worker is pinned to this many cores of its own, so two workers never share a core.
        max_in_flight_batches: batches sent to one device and not answered yet (>= 1): 2 keeps the next
            batch waiting in the device's inbox while the current one computes, so the device never idles.
        start_timeout_s: how long ``start()`` waits for every worker to load its model (> 0).
    """

    max_batch_size: int = 16
    max_queue_delay_ms: float = 2.0
    threads_per_worker: int = 1
    max_in_flight_batches: int = 2
    start_timeout_s: float = 120.0

    def __post_init__(self) -> None:
        if int(self.max_batch_size) < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {self.max_batch_size}")
        if float(self.max_queue_delay_ms) < 0:
            raise ValueError(f"max_queue_delay_ms must be >= 0, got {self.max_queue_delay_ms}")
        if int(self.threads_per_worker) < 1:
            raise ValueError(f"threads_per_worker must be >= 1, got {self.threads_per_worker}")
        if int(self.max_in_flight_batches) < 1:
            raise ValueError(f"max_in_flight_batches must be >= 1, got {self.max_in_flight_batches}")
        if float(self.start_timeout_s) <= 0:
            raise ValueError(f"start_timeout_s must be > 0, got {self.start_timeout_s}")


@dataclass
class RouterStats:
    """What a router did since ``start()``, per device index (``DeviceRouter.stats()``).

    Attributes:
        devices: the device of each worker, e.g. ``["cpu:0", "cpu:1"]`` or ``["cuda:0", "cuda:1"]``.
        completed: requests answered by each device.
        batches: model calls (batches) run by each device.
        alive: whether each device's worker is still serving.
        rerouted: requests moved to another device after their device failed.
        failed: requests that ended with an error.
    """

    devices: list[str]
    completed: list[int]
    batches: list[int]
    alive: list[bool]
    rerouted: int = 0
    failed: int = 0
    extra: dict = field(default_factory=dict)


class RouterError(RuntimeError):
    """Base class of every error a ``DeviceRouter`` raises or sets on a future."""


class RouterClosed(RouterError):
    """``submit`` on a router that is not running, or a request dropped by ``close(drain=False)``."""


class NoDeviceLeft(RouterError):
    """Every worker has died: the request cannot be served anywhere."""


class WorkerFailed(RouterError):
    """A worker reported an error for a batch (its model raised); set on that batch's futures."""
