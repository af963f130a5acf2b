"""A pipeline run's state, its accounting and its stage clock: the helpers every ``Pipeline`` shares.

Helpers, written in full: the learner's ``Pipeline`` (``starter/pipeline.py``) and the reference both derive
from :class:`PipelineState`, so the bookkeeping that makes "every frame is answered or counted" hold is the
same for everyone; the stage loops, ``run`` and the fault handling that use it are the exercises.
"""
from __future__ import annotations

import collections
import itertools
import threading
import time
from typing import Sequence

from torch import nn

from .sources import Source
from .types import STAGES, Event, FrameResult, PipelineConfig, PipelineError, PipelineReport, SourceFrame, StageStats, \
    StreamReport

__all__ = ["POLL_S", "StageClock", "PipelineState"]

#: How long a stage's thread waits on its input queue before it looks around (stop flag, gaps), in seconds.
POLL_S = 0.05


class StageClock:
    """Per-stage work times and what each thread is busy with right now (helper, written in full).

    ``begin(stage)`` / ``end(token)`` bracket one item's work; ``stalled(timeout)`` names a stage whose thread
    has been inside one item for longer than ``timeout`` seconds. Memory stays flat on long runs: totals are
    running sums, percentiles come from the last ``keep`` items of each stage.
    """

    def __init__(self, keep: int = 5000):
        self._lock = threading.Lock()
        self._recent = {s: collections.deque(maxlen=keep) for s in STAGES}
        self._count = dict.fromkeys(STAGES, 0)
        self._busy = dict.fromkeys(STAGES, 0.0)
        self._open: dict[int, tuple[str, float]] = {}
        self._tokens = itertools.count(1)

    def begin(self, stage: str) -> int:
        """Note that a thread of ``stage`` starts one item now; returns the token to pass to :meth:`end`."""
        with self._lock:
            token = next(self._tokens)
            self._open[token] = (stage, time.perf_counter())
            return token

    def end(self, token: int, duration_s: float | None = None) -> None:
        """Close ``token``; ``duration_s`` overrides the measured time (the decode stage passes its own)."""
        with self._lock:
            stage, t0 = self._open.pop(token)
            d = time.perf_counter() - t0 if duration_s is None else duration_s
            self._recent[stage].append(d)
            self._count[stage] += 1
            self._busy[stage] += d

    def cancel(self, token: int) -> None:
        """Close ``token`` without counting an item (the source had no frame left to give)."""
        with self._lock:
            self._open.pop(token, None)

    def stalled(self, timeout_s: float) -> str | None:
        """The stage whose thread has been inside one item longest, if longer than ``timeout_s``; else None."""
        now = time.perf_counter()
        with self._lock:
            late = [(t0, stage) for stage, t0 in self._open.values() if now - t0 > timeout_s]
        return min(late)[1] if late else None

    def stats(self, threads: dict[str, int]) -> dict[str, StageStats]:
        """One :class:`StageStats` per stage; ``threads`` maps a stage to how many threads ran it."""
        with self._lock:
            out = {}
            for s in STAGES:
                st = StageStats.from_times(s, list(self._recent[s]), threads.get(s, 0))
                st.items, st.busy_s = self._count[s], self._busy[s]
                out[s] = st
            return out


class PipelineState:
    """What one ``Pipeline.run`` keeps, and the bookkeeping around it (helpers, written in full).

    Args:
        classifier: the crop classifier (float32 [K, 1, 32, 32] -> [K, 10] logits); None: the trained digits CNN.
        config: see :class:`PipelineConfig`.

    ``self.model`` is what the inference stage runs: the classifier, or ``optimize_classifier``'s model when
    ``config.optimized``, on ``config.device``. One ``run`` at a time per instance; an instance can run again
    once ``run`` has returned.
    """

    def __init__(self, classifier: nn.Module | None = None, config: PipelineConfig | None = None):
        from .detector import default_classifier

        self.config = config or PipelineConfig()
        self.classifier = (classifier if classifier is not None else default_classifier()).eval()
        self.model = self._optimize(self.classifier) if self.config.optimized else self.classifier
        if self.config.device != "cpu":
            if self.config.optimized:
                raise PipelineError("the optimized (INT8) classifier runs on the CPU: use device='cpu' with optimized=True")
            self.model = self.model.to(self.config.device)
        self._running = threading.Lock()

    def _optimize(self, classifier: nn.Module) -> nn.Module:
        """The optimized classifier (the subclass calls its ``optimize_classifier``)."""
        raise NotImplementedError("Task 4.2: Pipeline._optimize calls optimize_classifier")

    def _new_queue(self, maxsize: int, policy: str):
        """A queue between two stages (the subclass makes its ``FrameQueue``)."""
        raise NotImplementedError("Task 4.4: Pipeline._new_queue makes a FrameQueue")

    def _reset(self, sources: Sequence[Source], on_result, on_event) -> None:
        """Fresh state for one run over ``sources`` (checked: non-empty, unique names)."""
        names = [getattr(s, "name", None) for s in sources]
        if not names:
            raise PipelineError("run needs at least one source")
        if any(not isinstance(n, str) or not n for n in names) or len(set(names)) != len(names):
            raise PipelineError(f"every source needs a unique, non-empty name; got {names}")
        cfg = self.config
        self._ingress = self._new_queue(cfg.queue_size, cfg.policy)
        self._batchq = self._new_queue(max(4 * cfg.preprocess_workers, 8), "block")
        self._trackq = self._new_queue(1024, "block")
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._clock = StageClock()
        self._streams = {n: StreamReport(n) for n in names}
        self._decoding = set(names)            # streams whose source is still being read
        self._pending = {n: {} for n in names}   # track stage: index -> (frame, detections), waiting for a gap
        self._skipped = {n: set() for n in names}  # dropped indices the track stage steps over
        self._next = dict.fromkeys(names, 0)   # next index each stream emits
        self._late = {n: set() for n in names}   # frames released after the run began to stop
        self._trackers: dict = {}   # stream -> IouTracker, made by the track stage on first use
        self._events: dict = {}     # stream -> EventDetector
        self._on_result, self._on_event = on_result, on_event
        self._callback_error: BaseException | None = None
        self._stalled: str | None = None
        self._batches = self._crops = 0
        self._all_done = threading.Event()

    def _count_in(self, frame: SourceFrame) -> None:
        """Count a frame its source released (a frame released once the run is stopping is remembered as late)."""
        with self._lock:
            self._streams[frame.stream].frames_in += 1
            if self._stop.is_set():
                self._late[frame.stream].add(frame.index)

    def _count_drop(self, stream: str, index: int, reason: str) -> None:
        """Count frame ``index`` of ``stream`` as dropped for ``reason`` (once) and let the track stage step over it.

        Once the run is stopping, ``_abort`` has already counted every frame released before the stop: only a
        frame released after it (late) is counted here.
        """
        with self._lock:
            if self._stop.is_set():
                if index not in self._late[stream]:
                    return
                self._late[stream].discard(index)
            elif index in self._skipped[stream] or index < self._next[stream] or self._streams[stream].completed:
                return
            self._skipped[stream].add(index)
            self._pending[stream].pop(index, None)
            d = self._streams[stream].dropped
            d[reason] = d.get(reason, 0) + 1
            self._advance(stream)

    def _count_batch(self, crops: int) -> None:
        """Count one classifier call over ``crops`` crops (the report's ``batches`` and ``crops``)."""
        with self._lock:
            self._batches += 1
            self._crops += int(crops)

    def _end_stream(self, stream: str) -> None:
        """The stream's source is done (ended or failed): it completes once its last frame is accounted for."""
        with self._lock:
            self._decoding.discard(stream)
            self._advance(stream)

    def _advance(self, stream: str) -> None:
        """Step over dropped indices; complete the stream when everything it released is accounted for."""
        with self._lock:
            skipped = self._skipped[stream]
            while self._next[stream] in skipped:
                skipped.discard(self._next[stream])
                self._next[stream] += 1
            rep = self._streams[stream]
            if (not rep.completed and stream not in self._decoding and not self._pending[stream]
                    and self._next[stream] >= rep.frames_in):
                rep.completed = True
                self._finish_events(stream)
                if all(r.completed for r in self._streams.values()):
                    self._all_done.set()

    def _finish_events(self, stream: str) -> None:
        if stream in self._events:
            for ev in self._events[stream].finish():
                self._emit_event(ev)

    def _emit_event(self, ev: Event) -> None:
        if self._on_event is not None and self._callback_error is None:
            try:
                self._on_event(ev)
            except BaseException as e:  # noqa: BLE001 - reported by run()
                self._callback_error = e

    def _emit(self, result: FrameResult, events: list[Event]) -> None:
        """Hand one result (and its events) to the callbacks and count it (under the lock, so counts never race)."""
        with self._lock:
            if self._stop.is_set():
                return
            self._streams[result.stream].frames_out += 1
            self._next[result.stream] = result.index + 1
            if self._on_result is not None and self._callback_error is None:
                try:
                    self._on_result(result)
                except BaseException as e:  # noqa: BLE001 - reported by run()
                    self._callback_error = e
            for ev in events:
                self._emit_event(ev)

    def _report(self, wall_s: float, threads: dict[str, int]) -> PipelineReport:
        return PipelineReport(streams=self._streams, stages=self._clock.stats(threads), wall_s=wall_s,
                              stalled=self._stalled, batches=self._batches, crops=self._crops)

