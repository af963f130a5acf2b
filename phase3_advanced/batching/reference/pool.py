# REFERENCE SOLUTION: excluded from the learner release (make release).
"""Task 3.3: serve several different models at once, each with its own batcher.

Guide: DYNAMIC_BATCHING_GUIDE.md#task-33-concurrent-models
"""
from __future__ import annotations

import threading
from concurrent.futures import Future
from typing import Sequence

import torch

from .batcher import DynamicBatcher
from ..types import BatcherConfig, BatcherStats, InvalidRequest, ModelSpec

__all__ = ["ModelPool"]


class ModelPool:
    """Several models served at once, like a Triton model repository: one batcher per model.

    Usage::

        specs = [ModelSpec("cnn", cnn_fn, (1, 32, 32)), ModelSpec("resnet", resnet_fn, (3, 64, 64)), ...]
        with ModelPool(specs, BatcherConfig(max_batch_size=8, max_queue_delay_ms=2)) as pool:
            y = pool.submit("cnn", x).result()
            pool.stats()["cnn"].completed
    """

    # -- helpers (written in full) ------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        """The served models' names, in the order given."""
        return list(self._batchers)

    def __enter__(self) -> "ModelPool":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -----------------------------------------------------------------------------------------------
    # ## Task 3.3: concurrent models
    # -----------------------------------------------------------------------------------------------
    def __init__(self, models: Sequence[ModelSpec], config: BatcherConfig | None = None) -> None:
        """Build one ``DynamicBatcher`` per model (nothing runs until ``start()``).

        Args:
            models: the models to serve (``ModelSpec``: name, model_fn, input_shape, dtype, config,
                device); at least one, names unique.
            config: batching settings for every model whose ``ModelSpec.config`` is None
                (None: ``BatcherConfig()``'s defaults).

        Effects:
            ``self._batchers``: dict name -> DynamicBatcher, in the order given. Each model gets its
            own batcher, so its own queue and worker thread: four models compute at the same time
            (PyTorch releases the GIL inside its operators). A model whose device is CUDA also gets
            its own ``torch.cuda.Stream(device=spec.device)`` (on that model's GPU, for "cuda:N" too), so
            its kernels can overlap the other models' on the GPU.

        Raises:
            ValueError: no models, or two with the same name.

        Tolerance the grader applies (p3.batching.pool_correct): four different models served at once by
        clients of all four; every output equals that model's own (max |difference| <= 1e-4), the
        grader's instrumented models see all four computing at the same moment, each model's
        ``stats()`` counts match what the grader sent and observed, and close() leaves no thread.

        Guide: DYNAMIC_BATCHING_GUIDE.md#task-33-concurrent-models
        """
        # BEGIN SOLUTION
        # Step 1: validate the names.
        specs = list(models)
        if not specs:
            raise ValueError("a ModelPool needs at least one model")
        names = [s.name for s in specs]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"model names must be unique; repeated: {dupes}")
        default = config if config is not None else BatcherConfig()
        # Step 2: one batcher (own queue, own worker thread, own CUDA stream on a GPU) per model.
        self._batchers: dict[str, DynamicBatcher] = {}
        for spec in specs:
            stream = torch.cuda.Stream(device=spec.device) if spec.device.startswith("cuda") else None
            self._batchers[spec.name] = DynamicBatcher(
                spec.model_fn, spec.config or default, input_shape=spec.input_shape, dtype=spec.dtype,
                name=spec.name, stream=stream)
        # END SOLUTION
        """ # BEGIN PROMPT
        # Step 1: specs = list(models); refuse an empty list and repeated names (ValueError naming them).
        # Step 2: default = config or BatcherConfig(). For each spec: stream = torch.cuda.Stream(device=spec.device)
        #   if spec.device starts with "cuda" else None; self._batchers[spec.name] = DynamicBatcher(spec.model_fn,
        #   spec.config or default, input_shape=spec.input_shape, dtype=spec.dtype, name=spec.name, stream=stream).
        raise NotImplementedError("Task 3.3: see DYNAMIC_BATCHING_GUIDE.md#task-33-concurrent-models")
        """  # END PROMPT

    def start(self) -> "ModelPool":
        """Start every model's batcher; return the pool.

        Returns:
            ``self``, so that ``pool = ModelPool(...).start()`` works.

        Tolerance the grader applies (p3.batching.pool_correct): all four models are served after start().

        Guide: DYNAMIC_BATCHING_GUIDE.md#task-33-concurrent-models
        """
        # BEGIN SOLUTION
        for batcher in self._batchers.values():
            batcher.start()
        return self
        # END SOLUTION
        """ # BEGIN PROMPT
        # Step 1: start() every batcher; Step 2: return self.
        raise NotImplementedError("Task 3.3: see DYNAMIC_BATCHING_GUIDE.md#task-33-concurrent-models")
        """  # END PROMPT

    def submit(self, name: str, x: torch.Tensor) -> Future:
        """Route one request to model ``name``'s batcher; return its future at once.

        Args:
            name: a model name given to the constructor.
            x: one request's input for that model (its ``input_shape`` and ``dtype``).

        Returns:
            The future from that model's ``DynamicBatcher.submit``.

        Raises:
            InvalidRequest: no model called ``name`` (the message lists the names), or a bad input.
            Overloaded, BatcherClosed: as ``DynamicBatcher.submit``.

        Tolerance the grader applies (p3.batching.pool_correct): every output is that model's own output for
        that input (max |difference| <= 1e-4); an unknown name raises InvalidRequest.

        Guide: DYNAMIC_BATCHING_GUIDE.md#task-33-concurrent-models
        """
        # BEGIN SOLUTION
        batcher = self._batchers.get(name)
        if batcher is None:
            raise InvalidRequest(f"no model called {name!r}; this pool serves {self.names}")
        return batcher.submit(x)
        # END SOLUTION
        """ # BEGIN PROMPT
        # Step 1: look the batcher up by name; unknown -> InvalidRequest listing self.names.
        # Step 2: return that batcher's submit(x) (its errors pass through unchanged).
        raise NotImplementedError("Task 3.3: see DYNAMIC_BATCHING_GUIDE.md#task-33-concurrent-models")
        """  # END PROMPT

    def close(self, *, drain: bool = True, timeout_s: float = 10.0) -> None:
        """Close every model's batcher, all at the same time; return when all have stopped.

        Args:
            drain, timeout_s: as ``DynamicBatcher.close``; ``timeout_s`` bounds the whole pool's close
                (the batchers close in parallel, so four draining models take as long as the slowest).

        Returns:
            None, once every model's batcher has closed.

        Tolerance the grader applies (p3.batching.pool_correct): no thread left running after close().

        Guide: DYNAMIC_BATCHING_GUIDE.md#task-33-concurrent-models
        """
        # BEGIN SOLUTION
        closers = [threading.Thread(target=b.close, kwargs={"drain": drain, "timeout_s": timeout_s},
                                    name=f"close-{name}") for name, b in self._batchers.items()]
        for t in closers:
            t.start()
        for t in closers:
            t.join()
        # END SOLUTION
        """ # BEGIN PROMPT
        # Step 1: one threading.Thread per batcher, target=batcher.close, kwargs={"drain": drain, "timeout_s": timeout_s}.
        # Step 2: start them all, then join them all: four draining models take as long as the slowest, not the sum.
        raise NotImplementedError("Task 3.3: see DYNAMIC_BATCHING_GUIDE.md#task-33-concurrent-models")
        """  # END PROMPT

    def stats(self) -> dict[str, BatcherStats]:
        """Per-model statistics: name -> that model's ``BatcherStats``.

        Returns:
            A dict with one entry per model, in the order given.

        Tolerance the grader applies (p3.batching.pool_correct): each model's ``completed`` equals the
        requests the grader sent it, and ``batches`` equals the model calls the grader observed.

        Guide: DYNAMIC_BATCHING_GUIDE.md#task-33-concurrent-models
        """
        # BEGIN SOLUTION
        return {name: b.stats() for name, b in self._batchers.items()}
        # END SOLUTION
        """ # BEGIN PROMPT
        # Step 1: {name: batcher.stats() for name, batcher in self._batchers.items()}.
        raise NotImplementedError("Task 3.3: see DYNAMIC_BATCHING_GUIDE.md#task-33-concurrent-models")
        """  # END PROMPT

