"""Task 4.2: collect_batch gathers frames of any streams up to max_crops or max_wait; classify_batch classifies them
in one call and gives each frame its own detections; optimize_classifier is smaller and agrees with the FP32 model.

collect_batch is tested on a plain ``queue.Queue`` with FrameQueue's ``get`` contract (so Task 4.2 does not need
Task 4.4), classify_batch on a fake classifier whose answer each crop spells out, and the last tests on the real
digits CNN with crops of short rendered clips (about 5 s for the file, mostly loading the model).
"""
from __future__ import annotations

import queue
import threading
import time

import numpy as np
import pytest
import torch
from torch import nn

from labdata.video import VideoConfig, render_frames

from .impl import p4p

pytestmark = pytest.mark.phase4_task2

#: Longest any call in this file may take before it counts as a hang.
HANG_S = 5.0


class ListQueue:
    """A queue with FrameQueue's ``get`` contract: ``queue.Empty`` on timeout, QueueClosed once closed and empty."""

    def __init__(self, items=()):
        self.q: queue.Queue = queue.Queue()
        self.closed = False
        for it in items:
            self.q.put(it)

    def put(self, item) -> None:
        self.q.put(item)

    def get(self, timeout: float | None = None):
        try:
            return self.q.get(timeout=0 if self.closed else timeout)
        except queue.Empty:
            if self.closed:
                raise p4p.QueueClosed("closed and empty") from None
            raise

    def __len__(self) -> int:
        return self.q.qsize()


def crop_of(label: int, logit: float) -> torch.Tensor:
    """A [1, 32, 32] crop that the fake classifier reads as ``label`` with ``logit``."""
    c = torch.zeros(1, 32, 32)
    c[0, 0, 0], c[0, 0, 1] = label, logit
    return c


class Spelled(nn.Module):
    """Logits [N, 10] spelled out by each crop: class ``x[n, 0, 0, 0]`` gets logit ``x[n, 0, 0, 1]``, the rest 0.

    Softmax score of the class: ``e^l / (e^l + 9)``: logit 6 -> 0.978, logit 0.5 -> 0.155 (l > 0: no tie). Notes every call's size
    and whether it ran under ``torch.inference_mode()``.
    """

    def __init__(self):
        super().__init__()
        self.calls: list[int] = []
        self.inference_mode: list[bool] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append(int(x.shape[0]))
        self.inference_mode.append(torch.is_inference_mode_enabled())
        out = torch.zeros(x.shape[0], 10)
        out[torch.arange(x.shape[0]), x[:, 0, 0, 0].long()] = x[:, 0, 0, 1]
        return out


def score_of(logit: float) -> float:
    return float(np.exp(logit) / (np.exp(logit) + 9))


def item(stream: str, index: int, spelled: list[tuple[int, float]] | int) -> "p4p.Preprocessed":
    """A preprocessed frame: ``spelled`` crops (label, logit) each with a distinct box, or just that many crops."""
    if isinstance(spelled, int):
        spelled = [(k % 10, 6.0) for k in range(spelled)]
    k = len(spelled)
    boxes = np.array([[10 * j + index, 5, 10 * j + index + 8, 17] for j in range(k)], np.int64).reshape(-1, 4)
    crops = torch.stack([crop_of(lab, lg) for lab, lg in spelled]) if k else torch.zeros(0, 1, 32, 32)
    return p4p.Preprocessed(p4p.SourceFrame(stream, index, 0.0, None), boxes, crops)


# ------------------------------------------------------------------------------------------------
# collect_batch
# ------------------------------------------------------------------------------------------------
def test_takes_frames_in_order_until_max_crops():
    items = [item(f"cam{i % 3}", i, 3) for i in range(6)]
    q = ListQueue(items)
    batch = p4p.collect_batch(q, max_crops=7, max_wait_s=HANG_S)
    assert [b is it for b, it in zip(batch, items)] == [True] * 3 and len(batch) == 3, (
        "3 + 3 < 7 <= 3 + 3 + 3 crops: the batch is the first three frames, in order")
    assert len(q) == 3, "the frames not taken stay in the queue"
    assert p4p.collect_batch(q, max_crops=6, max_wait_s=HANG_S) == items[3:5]


def test_a_frame_is_never_split_and_a_big_one_goes_alone():
    big, small = item("cam0", 0, 10), item("cam1", 0, 2)
    q = ListQueue([big, small])
    assert p4p.collect_batch(q, max_crops=4, max_wait_s=HANG_S) == [big]
    assert p4p.collect_batch(q, max_crops=4, max_wait_s=0.05) == [small]


def test_frames_without_crops_are_kept():
    items = [item("cam0", 0, 0), item("cam1", 0, 2), item("cam0", 1, 0), item("cam1", 1, 2)]
    batch = p4p.collect_batch(ListQueue(items), max_crops=4, max_wait_s=HANG_S)
    assert batch == items, "a frame with no crop still needs an answer: it goes in the batch"


def test_an_empty_queue_gives_an_empty_batch_after_first_timeout():
    t0 = time.perf_counter()
    assert p4p.collect_batch(ListQueue(), max_crops=8, max_wait_s=0.01, first_timeout_s=0.05) == []
    assert time.perf_counter() - t0 < HANG_S


def test_a_lone_frame_is_sent_after_max_wait():
    lone = item("cam0", 0, 2)
    t0 = time.perf_counter()
    batch = p4p.collect_batch(ListQueue([lone]), max_crops=64, max_wait_s=0.1)
    waited = time.perf_counter() - t0
    assert batch == [lone]
    assert waited < HANG_S, f"a lone frame waited {waited:.1f} s with max_wait_s=0.1"


def test_a_frame_arriving_within_max_wait_joins_the_batch(no_thread_leak):
    first, second = item("cam0", 0, 2), item("cam1", 0, 2)
    q = ListQueue([first])
    t = threading.Timer(0.05, q.put, args=(second,))
    t.start()
    t0 = time.perf_counter()
    batch = p4p.collect_batch(q, max_crops=4, max_wait_s=HANG_S)
    t.join()
    assert batch == [first, second]
    assert time.perf_counter() - t0 < HANG_S - 1, "the batch was full at 4 crops: it must go then, not at max_wait"


def test_a_closed_queue_ends_the_batch_or_raises():
    items = [item("cam0", 0, 1), item("cam1", 0, 1)]
    q = ListQueue(items)
    q.closed = True
    t0 = time.perf_counter()
    assert p4p.collect_batch(q, max_crops=64, max_wait_s=HANG_S) == items, "a batch already started is never lost"
    assert time.perf_counter() - t0 < HANG_S - 1, "once the queue is closed nothing more will come: do not wait"
    with pytest.raises(p4p.QueueClosed):
        p4p.collect_batch(q, max_crops=64, max_wait_s=0.05)


# ------------------------------------------------------------------------------------------------
# classify_batch
# ------------------------------------------------------------------------------------------------
def check(det, it, spelled: list[tuple[int, float]], threshold: float):
    """``det`` holds exactly ``it``'s crops whose score is >= threshold, with their own boxes, labels, scores."""
    keep = [j for j, (_, lg) in enumerate(spelled) if score_of(lg) >= threshold]
    assert isinstance(det, p4p.Detections)
    assert det.boxes.dtype == np.float32 and det.boxes.shape == (len(keep), 4), det.boxes
    assert det.labels.dtype == np.int64 and det.scores.dtype == np.float32
    np.testing.assert_array_equal(det.boxes, it.boxes[keep].astype(np.float32))
    np.testing.assert_array_equal(det.labels, [spelled[j][0] for j in keep])
    np.testing.assert_allclose(det.scores, [score_of(spelled[j][1]) for j in keep], atol=1e-5)


def test_one_call_for_frames_of_several_streams_each_gets_its_own_answer():
    rng = np.random.default_rng(0)
    spelled = [[(int(rng.integers(10)), float(rng.choice([6.0, 4.0, 0.5]))) for _ in range(int(rng.integers(1, 5)))]
               for _ in range(9)]
    items = [item(f"cam{i % 3}", i // 3, s) for i, s in enumerate(spelled)]
    model = Spelled()
    got = p4p.classify_batch(model, items, score_threshold=0.5)
    assert model.calls == [sum(len(s) for s in spelled)], f"one classifier call for the whole batch, got {model.calls}"
    assert model.inference_mode == [True], "classify under torch.inference_mode()"
    assert isinstance(got, list) and len(got) == len(items)
    for det, it, s in zip(got, items, spelled):
        check(det, it, s, 0.5)


def test_frames_without_crops_get_empty_detections_and_do_not_shift_the_others():
    spelled = [[(3, 6.0)], [], [(7, 6.0), (1, 6.0)], [], [(9, 6.0)]]
    items = [item(f"cam{i % 2}", i, s) for i, s in enumerate(spelled)]
    model = Spelled()
    got = p4p.classify_batch(model, items, score_threshold=0.5)
    assert model.calls == [4]
    for det, it, s in zip(got, items, spelled):
        check(det, it, s, 0.5)


def test_no_crop_at_all_means_no_call():
    model = Spelled()
    got = p4p.classify_batch(model, [item("cam0", 0, 0), item("cam1", 0, 0)], score_threshold=0.5)
    assert model.calls == [], "nothing to classify: the classifier must not be called"
    assert len(got) == 2 and all(len(d) == 0 and d.boxes.shape == (0, 4) for d in got)


@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.95, 1.0])
def test_the_score_threshold_filters_each_frame(threshold):
    spelled = [[(2, 6.0), (5, 0.5)], [(4, 4.0)], [(8, 0.5), (6, 6.0), (0, 4.0)]]    # scores 0.978, 0.155, 0.858
    items = [item(f"cam{i}", 0, s) for i, s in enumerate(spelled)]
    got = p4p.classify_batch(Spelled(), items, score_threshold=threshold)
    for det, it, s in zip(got, items, spelled):
        check(det, it, s, threshold)


# ------------------------------------------------------------------------------------------------
# The real digits CNN: batching changes nothing; the optimized model is smaller and agrees
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def classifier() -> nn.Module:
    return p4p.default_classifier()


@pytest.fixture(scope="module")
def real_items() -> list:
    """Preprocessed frames of two short rendered clips, interleaved (frames with and without crops)."""
    clips = [[f for f, _ in render_frames(VideoConfig(width=160, height=120, digit_size=24, frames=12, seed=s))]
             for s in (1, 2)]
    out = []
    for i in range(12):
        for k, frames in enumerate(clips):
            boxes, crops = p4p.propose(frames[i])
            out.append(p4p.Preprocessed(p4p.SourceFrame(f"cam{k}", i, 0.0, frames[i]), boxes, crops))
    assert sum(len(it.crops) for it in out) > 20, "the rendered clips should hold digits"
    return out


def test_batched_detections_equal_each_frame_classified_alone(classifier, real_items):
    together = p4p.classify_batch(classifier, real_items, score_threshold=0.5)
    for it, det in zip(real_items, together):
        alone = p4p.classify_batch(classifier, [it], score_threshold=0.5)[0]
        np.testing.assert_array_equal(det.boxes, alone.boxes)
        np.testing.assert_array_equal(det.labels, alone.labels)
        np.testing.assert_allclose(det.scores, alone.scores, atol=1e-4)
        assert (det.scores >= 0.5).all() and (det.scores <= 1.0).all()


def test_optimized_classifier_is_smaller_agrees_and_leaves_the_original_alone(classifier, real_items):
    before = {k: v.clone() for k, v in classifier.state_dict().items()}
    small = p4p.optimize_classifier(classifier)
    assert isinstance(small, nn.Module) and small is not classifier
    assert not small.training, "the optimized model must be in eval mode"
    assert all(torch.equal(before[k], v) for k, v in classifier.state_dict().items()), (
        "optimize_classifier changed the FP32 model it was given: work on a copy")
    ratio = p4p.serialized_bytes(small) / p4p.serialized_bytes(classifier)
    assert ratio <= 0.6, f"the optimized model's saved weights are {100 * ratio:.0f} % of the FP32 model's (at most 60 %)"
    crops = torch.cat([it.crops for it in real_items if len(it.crops)])
    with torch.inference_mode():
        want, got = classifier(crops), small(crops)
    assert got.shape == want.shape == (len(crops), 10)
    agree = (got.argmax(1) == want.argmax(1)).float().mean().item()
    assert agree >= 0.95, f"the optimized model agrees with the FP32 one on {100 * agree:.0f} % of crops (need 95 %)"
