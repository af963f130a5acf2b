"""Tasks 4.1 and 4.5: a multi-stream video pipeline as stages joined by bounded queues, and what it does
when something breaks.

::

    source 1 --decode--\\                                             /--track--> on_result, on_event
    source 2 --decode---> ingress --preprocess x W--> batch --inference--> results (in frame order per stream)
    source N --decode--/   (FrameQueue,                (FrameQueue,  (one forward for many frames
                            overload policy)            block)        of many streams)

Every stage runs in its own thread(s); a bounded queue between two stages is what lets them run at the
same time while keeping memory bounded, and the ingress queue's policy (Task 4.4) is where overload turns
into counted drops instead of growing latency. Each frame carries its stream, index and release time
through every stage; the track stage puts each stream's frames back in order (preprocess workers finish
out of order), skipping frames that were dropped, and runs that stream's tracker.

Accounting is the contract: every frame a source releases ends as exactly one result or one counted drop.

Guide: SYSTEM_ARCHITECTURE_GUIDE.md#task-41-stages-and-queues
"""
from __future__ import annotations

import threading
import time
from typing import Callable, Sequence

import numpy as np
from torch import nn

from ..detector import propose
from ..sources import Source
from ..state import POLL_S, PipelineState, StageClock
from ..types import Event, FrameResult, PipelineError, PipelineReport, Preprocessed, QueueClosed
from .batching import classify_batch, collect_batch, optimize_classifier
from .queues import Empty, FrameQueue
from .tracking import EventDetector, IouTracker

__all__ = ["Pipeline", "StageClock", "POLL_S"]


class Pipeline(PipelineState):
    """A video analysis pipeline over many streams (see the module docstring).

    Args:
        classifier: the crop classifier (float32 [K, 1, 32, 32] -> [K, 10] logits); None: the trained digits CNN.
        config: see :class:`PipelineConfig`.

    The run's state and its bookkeeping (``_reset``, ``_count_in``, ``_count_drop``, ``_end_stream``, ``_advance``,
    ``_emit``, ``_report``, the stage clock ``self._clock``) come from :class:`PipelineState` (``state.py``).
    """

    def _optimize(self, classifier: nn.Module) -> nn.Module:
        """``optimize_classifier(classifier)`` (helper, written in full)."""
        return optimize_classifier(classifier)

    def _new_queue(self, maxsize: int, policy: str) -> FrameQueue:
        """``FrameQueue(maxsize, policy)`` (helper, written in full)."""
        return FrameQueue(maxsize, policy)

    # -------------------------------------------------------------------------------------------------
    # ## Task 4.1: stages and queues
    # -------------------------------------------------------------------------------------------------
    def run(self, sources: Sequence[Source], *, on_result: Callable[[FrameResult], None] | None = None,
            on_event: Callable[[Event], None] | None = None, timeout_s: float | None = None) -> PipelineReport:
        """Run every source through the pipeline at once, until each stream is complete.

        Args:
            sources: the streams (:class:`~..sources.Source` objects, unique names), all started together.
            on_result: called once per frame that was analysed, with its :class:`FrameResult`, in frame order
                within each stream, from the track thread (keep it quick).
            on_event: called with each :class:`Event` (enter, leave, cross) as it happens.
            timeout_s: stop after this many seconds even if streams are not done (None: no limit); what is not
                done is counted as dropped (``"stalled"``) and ``report.stalled`` is ``"timeout"``.

        Returns:
            The :class:`PipelineReport`: per stream ``frames_in == frames_out + dropped`` and ``completed``; per
            stage where the time went; ``stalled`` when a stage stalled (Task 4.5).

        Raises:
            PipelineError: no sources, names not unique, or a run already in progress.
            Whatever ``on_result``/``on_event`` raised, after the pipeline has shut down.

        Start one decode thread per source, ``config.preprocess_workers`` preprocess threads, one inference and
        one track thread (daemon threads), wait until every stream is complete (or a stage stalls: call
        ``self._abort(stage)``; or ``timeout_s`` passes: ``self._abort("timeout")``), then shut down cleanly: close
        the queues so that every thread ends, and join them.

        Tolerance the grader applies (p4.pipeline.stages): three live streams of 2 s each finish within 1.5 x 2 s
        + 1.5 s (side by side, not one after another); every frame answered once, in order, with its release time
        and its own detections; no thread left running after ``run`` returns.

        Guide: SYSTEM_ARCHITECTURE_GUIDE.md#task-41-stages-and-queues
        """
        # Step 1: take self._running without blocking (PipelineError if it is held), then self._reset(...).
        # Step 2: threads (daemon=True): one running self._decode_loop(source) per source,
        #         config.preprocess_workers running self._preprocess_loop, one self._inference_loop, one
        #         self._track_loop. Note the start time, start them all.
        # Step 3: wait on self._all_done in steps of POLL_S; at each step ask self._clock.stalled(
        #         config.stall_timeout_s): a stage name -> self._abort(stage) and stop waiting; past timeout_s ->
        #         self._abort("timeout").
        # Step 4: shut down: self._stop.set(), close the three queues, join every thread (a timeout: a stalled
        #         one may never return), build the report with self._report(wall_s, {stage: thread count}),
        #         release self._running (finally:), and re-raise self._callback_error if a callback failed.
        raise NotImplementedError("Task 4.1: see SYSTEM_ARCHITECTURE_GUIDE.md#task-41-stages-and-queues")

    def _decode_loop(self, source: Source) -> None:
        """The decode stage for one source: read frames as the source releases them into the ingress queue.

        Args:
            source: the stream to read (iterating it yields :class:`SourceFrame` objects as they are released).

        Count every frame released (``self._count_in``) before anything else happens to it. ``put`` it on
        ``self._ingress``; a frame the overload policy evicts (what ``put`` returns) is counted with
        ``self._count_drop(stream, index, "overload")``. Time each frame's decoding with the clock
        (``begin("decode")`` before asking the source, ``end(token, frame.decode_s)`` after). When the source
        ends call ``self._end_stream(name)``; when it raises (corrupt video, decoder error) call
        ``self._fail_stream(name, error)`` (Task 4.5): the stream ends there, the others go on. Once
        ``self._stop`` is set, count what is released as ``"stalled"`` and stop.

        Tolerance the grader applies (p4.pipeline.stages, p4.pipeline.faults): every released frame is counted in
        ``frames_in``; a failing source ends its stream with an error, never the run.

        Guide: SYSTEM_ARCHITECTURE_GUIDE.md#task-41-stages-and-queues
        """
        # Step 1: frames = iter(source). Loop while self._stop is not set:
        #         token = self._clock.begin("decode"); frame = next(frames)
        #         StopIteration -> self._clock.cancel(token), self._end_stream(name), return;
        #         any other exception -> cancel the token, self._fail_stream(name, e), return;
        #         else self._clock.end(token, frame.decode_s).
        # Step 2: self._count_in(frame), then evicted = self._ingress.put(frame); QueueClosed -> count the frame
        #         as "stalled" and stop; an evicted frame -> self._count_drop(evicted.stream, evicted.index, "overload").
        # Step 3: after the loop, self._end_stream(name).
        raise NotImplementedError("Task 4.1: see SYSTEM_ARCHITECTURE_GUIDE.md#task-41-stages-and-queues")

    def _preprocess_loop(self) -> None:
        """A preprocess worker: ingress frame -> region proposals -> the batch queue.

        Take frames from ``self._ingress`` (``get(timeout=POLL_S)``; ``Empty``: look again; ``QueueClosed``: the
        run is over, return). Time :func:`propose` with the clock (stage ``"preprocess"``); a frame it fails on is
        counted as ``"error"`` and the worker goes on. Drop the image once its crops are cut unless
        ``config.keep_images`` (memory); put ``Preprocessed(frame, boxes, crops)`` on ``self._batchq`` (it blocks
        when inference is behind: that back-pressure is what fills the ingress queue, where the policy acts).

        Tolerance the grader applies (p4.pipeline.stages): several workers run at once (the preprocess stage's
        busy time may exceed the wall time).

        Guide: SYSTEM_ARCHITECTURE_GUIDE.md#task-41-stages-and-queues
        """
        # Step 1: loop: frame = self._ingress.get(timeout=POLL_S); Empty -> continue; QueueClosed -> return.
        # Step 2: token = self._clock.begin("preprocess"); boxes, crops = propose(frame.image); end the token.
        #         If propose raises: end the token, self._count_drop(frame.stream, frame.index, "error"), continue.
        # Step 3: unless self.config.keep_images, set frame.image = None (the crops are all inference needs).
        # Step 4: self._batchq.put(Preprocessed(frame, boxes, crops)); QueueClosed -> count "stalled", return.
        raise NotImplementedError("Task 4.1: see SYSTEM_ARCHITECTURE_GUIDE.md#task-41-stages-and-queues")

    def _inference_loop(self) -> None:
        """The inference stage: batches of preprocessed frames from any streams -> one classifier call each.

        Use :func:`collect_batch` on ``self._batchq`` (``max_crops=config.max_batch_crops``,
        ``max_wait_s=config.max_wait_ms / 1000``; ``QueueClosed``: return; ``[]``: look again) and
        :func:`classify_batch` with ``self.model``, timed with the clock (stage ``"inference"``, one item per
        batch). Count it with ``self._count_batch(crops)``. A batch the classifier fails on is counted frame by
        frame as ``"error"``. Put each ``(frame, detections)`` pair on ``self._trackq``.

        Tolerance the grader applies (p4.pipeline.batching): see :func:`collect_batch` and :func:`classify_batch`.

        Guide: SYSTEM_ARCHITECTURE_GUIDE.md#task-42-batching-across-streams
        """
        # Step 1: loop: batch = collect_batch(self._batchq, max_crops=..., max_wait_s=config.max_wait_ms / 1000);
        #         QueueClosed -> return; an empty batch -> continue.
        # Step 2: time classify_batch(self.model, batch, score_threshold=...) with self._clock ("inference");
        #         if it raises, count every frame of the batch as "error" and continue.
        # Step 3: self._count_batch(number of crops in the batch) (the report's batches and crops).
        # Step 4: put (item.frame, detections) on self._trackq for each frame (QueueClosed -> return).
        raise NotImplementedError("Task 4.2: see SYSTEM_ARCHITECTURE_GUIDE.md#task-42-batching-across-streams")

    def _track_loop(self) -> None:
        """The track stage: each stream's frames back in order -> tracker -> events -> ``on_result``.

        Take ``(frame, detections)`` from ``self._trackq`` (``get(timeout=POLL_S)``; ``Empty``: look again;
        ``QueueClosed``: return). Hold it in ``self._pending[stream][index]``; then, under ``self._lock``, emit
        that stream's frames while the next expected one (``self._next[stream]``) is pending: run the stream's
        :class:`IouTracker` (``self._trackers``, made on first use with ``config.iou_min``/``max_age``) and
        :class:`EventDetector` (``self._events``; width from ``frame.size``), build the :class:`FrameResult`
        (``done_t`` now; ``image`` only with ``keep_images``) and call ``self._emit(result, events)``, timed
        with the clock (stage ``"track"``). After each frame call ``self._advance(stream)`` (it steps over
        dropped frames and completes the stream).

        Tolerance the grader applies (p4.pipeline.stages, p4.pipeline.tracking): results in frame order per
        stream, each frame once, from the right stream; track ids as :class:`IouTracker` gives them.

        Guide: SYSTEM_ARCHITECTURE_GUIDE.md#task-41-stages-and-queues
        """
        # Step 1: loop: frame, det = self._trackq.get(timeout=POLL_S); Empty -> continue; QueueClosed -> return.
        # Step 2: with self._lock: skip a frame already counted (index < self._next[s] or in self._skipped[s]);
        #         else self._pending[s][frame.index] = (frame, det) and self._advance(s).
        # Step 3: while self._next[s] is in self._pending[s]: pop it, begin a "track" token, make the stream's
        #         IouTracker / EventDetector on first use, ids = tracker.update(...), events = detector.update(...),
        #         build the FrameResult (done_t = time.perf_counter()), self._emit(result, events), end the token,
        #         self._advance(s).
        raise NotImplementedError("Task 4.1: see SYSTEM_ARCHITECTURE_GUIDE.md#task-41-stages-and-queues")

    # -------------------------------------------------------------------------------------------------
    # ## Task 4.5: faults and shutdown
    # -------------------------------------------------------------------------------------------------
    def _fail_stream(self, stream: str, error: BaseException) -> None:
        """A stream's source failed (missing file, corrupt video, decoder error): report it, keep the others going.

        Args:
            stream: the stream's name.
            error: what the source raised.

        Record ``"<ErrorType>: <message>"`` as the stream's ``error`` (the first error, if there are several) and
        end the stream (``self._end_stream``): its frames already released still go through the pipeline and it
        completes once they are accounted for. Nothing else stops.

        Tolerance the grader applies (p4.pipeline.faults): among good clips, a corrupt one, a missing one and a
        decoder that fails half-way: the good streams' results are complete and identical to a clean run's, each
        bad stream has an error naming what went wrong, the frames it released before failing are answered or
        counted, and the run ends on its own.

        Guide: SYSTEM_ARCHITECTURE_GUIDE.md#task-45-faults-and-shutdown
        """
        # Step 1: under self._lock, set self._streams[stream].error to f"{type(error).__name__}: {error}" unless
        #         an earlier error is already there.
        # Step 2: self._end_stream(stream): the stream completes once what it released is accounted for.
        raise NotImplementedError("Task 4.5: see SYSTEM_ARCHITECTURE_GUIDE.md#task-45-faults-and-shutdown")

    def _abort(self, stage: str) -> None:
        """Stop the run because ``stage`` stalled (or ``"timeout"``), accounting for every frame not answered.

        Args:
            stage: the stalled stage's name (one of ``STAGES``), or ``"timeout"``.

        Record it as ``self._stalled``; set ``self._stop`` (``_emit`` then emits nothing more); close the three
        queues (every waiting thread wakes) and drain them; then, for every stream, count every frame released
        but not yet emitted (queued, in a stage, or pending in the track stage) as dropped ``"stalled"``, give a
        stream with no error one (``"stalled in stage <stage>"``), and mark the streams completed. ``run`` then
        returns at once even though the stalled thread may never come back (daemon threads).

        Tolerance the grader applies (p4.pipeline.faults): with a classifier that hangs, ``run`` returns within
        ``stall_timeout_s`` + 3 s, names the stage, and ``frames_in == frames_out + dropped`` holds for every stream.

        Guide: SYSTEM_ARCHITECTURE_GUIDE.md#task-45-faults-and-shutdown
        """
        # Step 1: under self._lock: self._stalled = stage; self._stop.set(); close and drain the three queues.
        # Step 2: for each stream not completed: unanswered = frames_in - frames_out - dropped so far; add it to
        #         dropped["stalled"]; clear its pending frames; error "stalled in stage <stage>" if it has none;
        #         completed = True.
        # Step 3: self._all_done.set() so run stops waiting.
        raise NotImplementedError("Task 4.5: see SYSTEM_ARCHITECTURE_GUIDE.md#task-45-faults-and-shutdown")
