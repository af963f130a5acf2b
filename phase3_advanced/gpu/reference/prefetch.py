# REFERENCE SOLUTION: excluded from the learner release (make release).
"""Task 3.5: an overlapped input pipeline: prepare batch i+1 on a background thread while the model runs batch i.

A serving or evaluation loop that does ``for item in items: y = model(preprocess(item))`` leaves the model
idle while each batch is decoded, resized and normalised, and leaves the preprocessing idle while the model
runs: per batch it pays ``p + m``. A *prefetcher* runs ``preprocess`` on a producer thread, a few items ahead,
and hands finished batches over through a bounded queue, so the consumer pays only ``max(p, m)`` per batch::

    producer thread  | pre 0 | pre 1 | pre 2 |  (waits: queue full)  | pre 3 | ...
    consumer thread          | model 0       | model 1       | model 2       | ...

Two threads are enough in Python because PyTorch releases the GIL inside its operators: a resize on the
producer thread and a convolution on the consumer thread run on two cores at once. On a GPU the consumer's
model runs on the device, and the producer also moves each batch there: it copies the batch into
*pinned* (page-locked) host memory and issues the copy on a *side* CUDA stream with ``non_blocking=True``,
so the transfer of batch i+1 overlaps the kernels of batch i; a CUDA event recorded after the copy tells
the consumer's stream when the batch is really there.

Guide: GPU_OPTIMIZATION_GUIDE.md#task-35-an-overlapped-input-pipeline
"""
from __future__ import annotations

import queue
import threading
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import torch

__all__ = ["Prefetcher", "PrefetchError"]


# ---------------------------------------------------------------------------------------------------
# Helpers (written in full): what travels through the queue
# ---------------------------------------------------------------------------------------------------
class PrefetchError(RuntimeError):
    """``preprocess`` (or the items iterable) raised on one item (helper, written in full).

    Raised by ``Prefetcher.__next__`` at that item's position in the stream, after every earlier item
    was delivered. ``index`` is the item's 0-based position; the original exception is ``__cause__``.
    """

    def __init__(self, message: str, index: int) -> None:
        super().__init__(message)
        self.index = index


@dataclass
class _Staged:
    """One item ready for the consumer: ``tensor``, ``preprocess(item)`` already on the target device, and
    ``ready``, the ``torch.cuda.Event`` recorded on the side stream after its copy (None on the CPU)."""

    tensor: torch.Tensor
    ready: Any = None


@dataclass
class _Failed:
    """``preprocess`` raised ``error`` on item ``index``: delivered in that item's place."""

    index: int
    error: BaseException


#: The sentinel the producer puts after the last item: "no more items".
_DONE = object()


def _parse_device(device: str | torch.device) -> torch.device:
    """``"cpu"``, ``"cuda"`` or ``"cuda:N"`` as a ``torch.device`` (``"cuda"`` gets the current GPU's index)."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}") from None
    if dev.type == "cpu":
        return torch.device("cpu")
    if dev.type != "cuda":
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    if not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asks for a GPU, but PyTorch sees no CUDA device here: use device='cpu'")
    index = torch.cuda.current_device() if dev.index is None else dev.index
    if not 0 <= index < torch.cuda.device_count():
        raise ValueError(f"device {device!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return torch.device("cuda", index)


class Prefetcher:
    """Yields ``preprocess(item)`` for each item of ``items``, in order, staged up to ``depth`` items ahead
    by a background thread, on ``device``.

    Usage::

        with Prefetcher(raw_batches, preprocess, device="cuda", depth=2) as batches:
            for x in batches:              # x = preprocess(raw_batch), already on the GPU
                y = model(x)

    One producer thread (started by the first ``iter()``) loops over ``items``: ``_stage`` each one and put
    the result on a ``queue.Queue(maxsize=depth)``; a full queue makes it wait, so it never runs more than
    ``depth + 1`` items ahead of the consumer (``depth`` in the queue and one in its hands). The consumer's
    ``__next__`` takes them off in order. What can go wrong travels through the same queue: an exception
    from ``preprocess`` is put in that item's place and raised to the consumer there (``PrefetchError``),
    and a sentinel marks the end. ``close()`` (``__exit__`` calls it) stops the producer even when the
    consumer leaves the loop early.

    Attributes:
        device: where the batches are delivered, a ``torch.device`` (``cpu`` or ``cuda:N``).
        depth: the queue's capacity, in items (>= 1).
    """

    def __init__(self, items: Iterable[Any], preprocess: Callable[[Any], torch.Tensor], *,
                 device: str | torch.device = "cpu", depth: int = 2) -> None:
        """Validate and store the settings (helper, written in full). Nothing runs until ``iter()``.

        Args:
            items: any iterable of raw inputs (a list, a generator, a DataLoader): read once, in order, by
                the producer thread only.
            preprocess: ``item -> torch.Tensor`` on the CPU (e.g. a uint8 ``[B, H, W, 3]`` image batch ->
                float32 ``[B, 3, h, w]``, resized and normalised); called on the producer thread only, once
                per item.
            device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``: where the batches are delivered.
            depth: how many staged items may wait in the queue (>= 1); 2 is plenty when ``preprocess``
                and the model take about as long, more only smooths out uneven items.

        Raises:
            TypeError: ``items`` is not iterable, or ``preprocess`` is not callable.
            ValueError: ``depth`` < 1 or not an int, or ``device`` is neither a CPU nor an available GPU.
        """
        if not callable(preprocess):
            raise TypeError(f"preprocess must be callable (item -> tensor), got {type(preprocess).__name__}")
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
            raise ValueError(f"depth must be an int >= 1 (items staged ahead), got {depth!r}")
        try:
            self._items = iter(items)
        except TypeError:
            raise TypeError(f"items must be iterable (a list, a generator, a DataLoader), got "
                            f"{type(items).__name__}") from None
        self.device = _parse_device(device)
        self.depth = depth
        self._preprocess = preprocess
        self._queue: queue.Queue = queue.Queue(maxsize=depth)   # staged records, in order, then _DONE
        self._stop = threading.Event()                           # set by close(): the producer stops
        # The copies to the GPU go on a stream of their own, so they overlap the model's kernels.
        self._stream = torch.cuda.Stream(device=self.device) if self.device.type == "cuda" else None
        self._thread: threading.Thread | None = None
        self._producer_error: BaseException | None = None       # a bug in _produce itself (see _producer_main)
        self._finished = False                                   # the consumer has seen the end, an error, or close()
        self._lock = threading.Lock()                            # guards starting the thread once

    # -- helpers (written in full) ------------------------------------------------------------------
    def __iter__(self) -> "Prefetcher":
        """Start the producer thread (once) and return ``self``: a Prefetcher is a one-pass iterator."""
        self._start()
        return self

    def __enter__(self) -> "Prefetcher":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self) -> None:
        """Start the producer thread unless it was started already (or the prefetcher is closed)."""
        with self._lock:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._producer_main, name="prefetcher", daemon=True)
                self._thread.start()

    def _producer_main(self) -> None:
        """The thread's target: ``_produce()``, keeping whatever escapes it for the consumer (``_get``)."""
        try:
            self._produce()
        except BaseException as e:  # noqa: BLE001 - a bug in _produce: the consumer raises it, never hangs
            self._producer_error = e

    def _get(self) -> Any:
        """The next record from the queue, waiting while the producer thread is alive.

        Returns:
            What the producer put: a ``_Staged``, a ``_Failed`` or ``_DONE`` (also once ``close()`` was called).

        Raises:
            RuntimeError: the producer thread has ended without putting ``_DONE`` (``_produce`` raised: that
                exception is the ``__cause__``), so nothing more will come.
        """
        while True:
            if self._finished:
                return _DONE      # close() was called (from another thread) while the consumer waited
            try:
                return self._queue.get(timeout=0.05)
            except queue.Empty:
                thread = self._thread
                if thread is not None and thread.is_alive():
                    continue
                try:
                    return self._queue.get_nowait()   # it may have put one just before it ended
                except queue.Empty:
                    raise RuntimeError("the prefetcher's producer thread ended without putting the end-of-items "
                                       "sentinel (_DONE): _produce must put every record, then _DONE, and "
                                       "return only when close() asks it to") from self._producer_error

    # -----------------------------------------------------------------------------------------------
    # ## Task 3.5: an overlapped input pipeline
    # -----------------------------------------------------------------------------------------------
    def _stage(self, item: Any) -> _Staged:
        """Preprocess one item and start moving it to ``self.device`` (runs on the producer thread).

        Args:
            item: one element of ``items``.

        Returns:
            ``_Staged(tensor, ready)``. On the CPU: ``tensor = preprocess(item)`` and ``ready = None``. On a GPU:
            ``tensor`` is ``preprocess(item)`` on ``self.device``, copied from pinned memory on the side stream
            ``self._stream`` with ``non_blocking=True`` (so this returns before the copy is done), and ``ready``
            a ``torch.cuda.Event`` recorded on that stream after the copy.

        Raises:
            TypeError: ``preprocess`` did not return a ``torch.Tensor`` (the message names what it returned).
            Whatever ``preprocess`` raises, unchanged (``_produce`` hands it to the consumer).

        Tolerance the grader applies (p3.gpu.prefetch_correct): every delivered batch equals
        ``preprocess(item)`` exactly (on a GPU: on the requested device), and ``preprocess`` runs on the
        producer thread, never the consumer's.

        Guide: GPU_OPTIMIZATION_GUIDE.md#task-35-an-overlapped-input-pipeline
        """
        # BEGIN SOLUTION
        # Step 1: the host work, on this (the producer) thread.
        x = self._preprocess(item)
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"preprocess must return a torch.Tensor, got {type(x).__name__}")
        # Step 2: on the CPU there is nothing more to do.
        if self._stream is None:
            return _Staged(x, None)
        # Step 3: on a GPU, pin the batch and copy it on the side stream; record when the copy is done.
        with torch.cuda.stream(self._stream):
            if x.device.type == "cpu" and not x.is_pinned():
                x = x.pin_memory()       # page-locked: the DMA engine can read it while the CPU works on
            x = x.to(self.device, non_blocking=True)
            ready = torch.cuda.Event()
            ready.record(self._stream)
        return _Staged(x, ready)
        # END SOLUTION
        """ # BEGIN PROMPT
        # Step 1: x = self._preprocess(item). Not a torch.Tensor -> TypeError naming type(x).__name__.
        # Step 2: on the CPU (self._stream is None): return _Staged(x, None).
        # Step 3: on a GPU, inside `with torch.cuda.stream(self._stream):`
        #   - x = x.pin_memory() (unless x.is_pinned() already): only page-locked memory can be copied
        #     asynchronously; from pageable memory non_blocking=True quietly waits for the copy.
        #   - x = x.to(self.device, non_blocking=True): queued on the side stream, returns at once.
        #   - ready = torch.cuda.Event(); ready.record(self._stream): "the copy is done" for the consumer.
        #   return _Staged(x, ready).
        raise NotImplementedError("Task 3.5: see GPU_OPTIMIZATION_GUIDE.md#task-35-an-overlapped-input-pipeline")
        """  # END PROMPT

    def _produce(self) -> None:
        """The producer thread's loop: stage every item, in order, onto the queue; then the sentinel.

        For each ``(index, item)`` of ``self._items``: ``_stage(item)``, and put the ``_Staged`` record on
        ``self._queue``. The put waits while the queue is full (``depth`` items the consumer has not taken),
        which is what keeps the producer at most ``depth + 1`` items ahead; it waits in short slices
        (``put(record, timeout=...)`` in a loop) and gives up as soon as ``self._stop`` is set, so that
        ``close()`` can stop a producer whose consumer went away.

        If ``_stage`` raises (``preprocess`` failed on that item) or reading the next item raises, put
        ``_Failed(index, error)`` instead and stop: the consumer gets every earlier item, then that error.
        After the last item, put ``_DONE``.

        Returns:
            None, when every item and the sentinel are on the queue, after an error was put, or as soon as
            ``close()`` sets ``self._stop``.

        Tolerance the grader applies (p3.gpu.prefetch_correct): item i+1 is staged while the consumer still
        holds item i (on at least half the items, with a consumer that holds each item 25 ms); never more than
        ``depth + 1`` items staged ahead of the consumer (one more allowed for the race between a ``get`` and
        the grader's clock); an error at item k arrives at position k; after ``close()`` no thread is left.
        p3.gpu.prefetch_speedup: the grader's loop ``for x in Prefetcher(items, preprocess): y = model(x)`` over
        its naive loop ``for item in items: y = model(preprocess(item))`` (16 batches of 16 images, the halves
        balanced to take about as long each, one PyTorch thread), as a share of the gain the grader's own two
        threads get from running the two halves at once in the same round: 50 % to pass, 75 % for full marks.

        Guide: GPU_OPTIMIZATION_GUIDE.md#task-35-an-overlapped-input-pipeline
        """
        # BEGIN SOLUTION
        def put(record: Any) -> bool:
            """Wait for room in the queue, in short slices; False once close() was called."""
            while not self._stop.is_set():
                try:
                    self._queue.put(record, timeout=0.05)
                    return True
                except queue.Full:
                    continue
            return False

        index = 0
        while not self._stop.is_set():
            # Step 1: the next item (the iterable itself may raise: a DataLoader whose worker died).
            try:
                item = next(self._items)
            except StopIteration:
                break
            except Exception as e:  # noqa: BLE001 - handed to the consumer at this position
                put(_Failed(index, e))
                return
            # Step 2: stage it; an error takes the item's place in the stream, and ends it.
            try:
                record: Any = self._stage(item)
            except Exception as e:  # noqa: BLE001 - preprocess's error, raised by the consumer
                put(_Failed(index, e))
                return
            # Step 3: hand it over (waits while `depth` staged items are not taken yet).
            if not put(record):
                return
            index += 1
        # Step 4: the end-of-items sentinel (unless close() stopped us).
        if not self._stop.is_set():
            put(_DONE)
        # END SOLUTION
        """ # BEGIN PROMPT
        # Step 1: a local put(record) -> bool: `while not self._stop.is_set():` try
        #   self._queue.put(record, timeout=0.05) and return True; on queue.Full try again. Return False once
        #   _stop is set. (A plain blocking put() would hang forever after the consumer leaves the loop early.)
        # Step 2: for index, item in enumerate(self._items): stop (return) if self._stop is set;
        #   record = self._stage(item); on an Exception e put _Failed(index, e) and return (the stream ends there).
        #   Put the record; if put() returned False (closed), return.
        #   (Reading the next item can raise too, e.g. a DataLoader whose worker died: the reference calls
        #   next(self._items) itself and treats that error like preprocess's.)
        # Step 3: after the last item, put(_DONE).
        raise NotImplementedError("Task 3.5: see GPU_OPTIMIZATION_GUIDE.md#task-35-an-overlapped-input-pipeline")
        """  # END PROMPT

    def __next__(self) -> torch.Tensor:
        """The next batch, ``preprocess(item)`` on ``self.device``, in the order of ``items``.

        Returns:
            The tensor ``preprocess`` returned for the next item, on ``self.device``. On a GPU it is ready to
            use on the caller's current stream: that stream waits for the copy (``wait_event``), so kernels
            queued next read the finished batch, and the caching allocator is told that the tensor is used
            there (``record_stream``), so its memory is not handed to the side stream while still in use.

        Raises:
            StopIteration: no more items (and on every call after the end, an error, or ``close()``).
            PrefetchError: ``preprocess`` raised on this item (message: "preprocess failed on item <index>:
                ..."; the original exception is ``__cause__``); the iteration ends with it.
            RuntimeError: the producer thread died without finishing (from ``_get``).

        Tolerance the grader applies (p3.gpu.prefetch_correct): every batch exactly once, in order, equal to
        ``preprocess(item)``; an exception in ``preprocess`` at item k reaches the consumer at position k with
        the k earlier batches delivered, its message naming k and the original as its cause, and the next
        call raises StopIteration.

        Guide: GPU_OPTIMIZATION_GUIDE.md#task-35-an-overlapped-input-pipeline
        """
        # BEGIN SOLUTION
        # Step 1: after the end, an error or close(): the iteration stays over (never wait on an empty queue).
        if self._finished:
            raise StopIteration
        self._start()    # next() without iter() works too
        # Step 2: the next record, in order.
        record = self._get()
        if record is _DONE:
            self._finished = True
            raise StopIteration
        if isinstance(record, _Failed):
            self._finished = True
            raise PrefetchError(f"preprocess failed on item {record.index}: {type(record.error).__name__}: "
                                f"{record.error}", record.index) from record.error
        # Step 3: on a GPU, make the consumer's stream wait for the copy, and tell the allocator it uses it.
        x = record.tensor
        if record.ready is not None:
            current = torch.cuda.current_stream(self.device)
            current.wait_event(record.ready)
            x.record_stream(current)
        return x
        # END SOLUTION
        """ # BEGIN PROMPT
        # Step 1: if self._finished: raise StopIteration (after the end, an error or close(), never wait again).
        #   Then self._start(), so that next() without iter() works too.
        # Step 2: record = self._get() (the queue's next record; it raises if the producer thread died).
        #   record is _DONE -> self._finished = True; raise StopIteration.
        #   isinstance(record, _Failed) -> self._finished = True; raise PrefetchError(
        #       f"preprocess failed on item {record.index}: ...", record.index) from record.error.
        # Step 3: x = record.tensor. If record.ready is not None (a GPU): current =
        #   torch.cuda.current_stream(self.device); current.wait_event(record.ready) (kernels queued next start
        #   after the copy); x.record_stream(current) (x was allocated on the side stream). Return x.
        raise NotImplementedError("Task 3.5: see GPU_OPTIMIZATION_GUIDE.md#task-35-an-overlapped-input-pipeline")
        """  # END PROMPT

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the producer thread and drop what it staged; safe to call any number of times.

        Called by ``__exit__``, so ``with Prefetcher(...) as batches:`` cleans up however the loop ends:
        all items consumed, a ``break``, or an exception in the consumer.

        Args:
            timeout_s: the longest wait for the producer thread to end, in seconds (it ends as soon as its
                current ``preprocess`` call returns).

        Returns:
            None, once the thread has ended (or ``timeout_s`` has passed: then a ``RuntimeWarning`` says so).

        Tolerance the grader applies (p3.gpu.prefetch_correct): after a consumer takes 3 of 30 items and
        leaves the ``with`` block, the producer thread has ended within 2 s, at most ``depth + 2`` items
        more were preprocessed, a second ``close()`` does nothing, and ``next()`` raises StopIteration.

        Guide: GPU_OPTIMIZATION_GUIDE.md#task-35-an-overlapped-input-pipeline
        """
        # BEGIN SOLUTION
        # Step 1: no more items for the consumer; the producer stops at its next check.
        self._finished = True
        self._stop.set()
        # Step 2: make room, so that a put() waiting on a full queue returns now, not after its time slice.
        self._drain()
        # Step 3: wait for the thread (unless close() runs on it, or it never started).
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout_s)
            if thread.is_alive():
                warnings.warn(f"the prefetcher's producer thread is still running {timeout_s:g} s after close(): "
                              f"preprocess has not returned yet", RuntimeWarning, stacklevel=2)
        # Step 4: drop whatever it put while we waited (frees the staged tensors, pinned and GPU memory).
        self._drain()
        # END SOLUTION
        """ # BEGIN PROMPT
        # Step 1: self._finished = True (next() now raises StopIteration); self._stop.set().
        # Step 2: self._drain() (empties the queue), so a producer waiting in put() finds room, sees _stop, ends.
        # Step 3: if self._thread is not None (and is not threading.current_thread()): join(timeout_s); if it
        #   is still alive, warnings.warn(..., RuntimeWarning).
        # Step 4: self._drain() again (the producer may have put one last record meanwhile).
        #   Calling close() twice must do no harm: every step above is safe to repeat.
        raise NotImplementedError("Task 3.5: see GPU_OPTIMIZATION_GUIDE.md#task-35-an-overlapped-input-pipeline")
        """  # END PROMPT

    def _drain(self) -> None:
        """Drop every record waiting in the queue (helper, written in full)."""
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                return
