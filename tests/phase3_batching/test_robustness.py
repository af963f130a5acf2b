"""Task 3.2: malformed requests, a failing model, a full queue and shutdown, each failing alone and clearly."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from graders.harness import settled

from .conftest import SHAPE, RowModel, SleepyModel
from .impl import p3

pytestmark = pytest.mark.phase3_task2


def config(**kw):
    kw.setdefault("max_batch_size", 4)
    kw.setdefault("max_queue_delay_ms", 1.0)
    kw.setdefault("max_queue_size", 64)
    return p3.BatcherConfig(**kw)


@pytest.mark.parametrize("x, word", [
    (torch.zeros(4), "shape"),
    (torch.zeros(1, 8), "shape"),
    (torch.zeros(8, dtype=torch.float64), "dtype"),
    (torch.zeros(8, dtype=torch.int32), "dtype"),
    (np.zeros(8, dtype=np.float32), "ndarray"),
    ([0.0] * 8, "list"),
], ids=["short", "batch-dim", "float64", "int32", "numpy", "list"])
def test_check_request_refuses_with_a_clear_message(x, word):
    with pytest.raises(p3.InvalidRequest, match=word):
        p3.check_request(x, input_shape=SHAPE, dtype=torch.float32)
    assert issubclass(p3.InvalidRequest, ValueError)


def test_check_request_passes_a_valid_input_through():
    x = torch.randn(*SHAPE)
    assert p3.check_request(x, input_shape=SHAPE, dtype=torch.float32) is x


def test_an_invalid_submit_is_refused_and_nothing_is_queued():
    with p3.DynamicBatcher(RowModel(), config(), input_shape=SHAPE) as b:
        with pytest.raises(p3.InvalidRequest):
            b.submit(torch.zeros(2, 8))
        ok = b.submit(torch.ones(*SHAPE)).result(timeout=5)
        stats = settled(b.stats, lambda s: s.completed >= 1)
    torch.testing.assert_close(ok, RowModel.expected(torch.ones(*SHAPE)))
    assert (stats.submitted, stats.rejected, stats.completed) == (1, 1, 1)


def test_a_model_exception_fails_its_batch_and_the_batcher_carries_on():
    calls = []

    def model(batch):
        calls.append(batch.shape[0])
        if len(calls) == 1:
            raise RuntimeError("boom")
        return RowModel()(batch)

    with p3.DynamicBatcher(model, config(max_queue_delay_ms=30), input_shape=SHAPE) as b:
        first = [b.submit(torch.zeros(*SHAPE)) for _ in range(3)]
        for f in first:
            with pytest.raises(p3.ModelError, match="boom") as info:
                f.result(timeout=5)
            assert isinstance(info.value.__cause__, RuntimeError)
        later = b.submit(torch.ones(*SHAPE)).result(timeout=5)
        stats = settled(b.stats, lambda s: s.completed >= 1 and s.failed >= 3)
    torch.testing.assert_close(later, RowModel.expected(torch.ones(*SHAPE)))
    assert stats.failed == 3 and stats.completed == 1


def test_a_model_returning_the_wrong_number_of_rows_is_a_model_error():
    with p3.DynamicBatcher(lambda b: b[:1], config(max_queue_delay_ms=20), input_shape=SHAPE) as b:
        futures = [b.submit(torch.zeros(*SHAPE)) for _ in range(2)]
        for f in futures:
            with pytest.raises(p3.ModelError):
                f.result(timeout=5)


def test_a_full_queue_refuses_at_once_and_recovers():
    gate = threading.Event()
    model = SleepyModel(0.0, gate=gate)
    with p3.DynamicBatcher(model, config(max_batch_size=2, max_queue_size=6), input_shape=SHAPE) as b:
        held = [b.submit(torch.zeros(*SHAPE)) for _ in range(2)]
        time.sleep(0.05)                                   # those two are inside the model now
        queued = [b.submit(torch.zeros(*SHAPE)) for _ in range(6)]
        t0 = time.perf_counter()
        with pytest.raises(p3.Overloaded, match="6"):
            b.submit(torch.zeros(*SHAPE))
        assert time.perf_counter() - t0 < 0.5             # waiting for room would wait for the gate
        gate.set()
        for f in held + queued:
            f.result(timeout=5)
        b.submit(torch.zeros(*SHAPE)).result(timeout=5)    # room again
        assert b.stats().rejected == 1


def test_close_with_drain_finishes_the_queue(no_thread_leak):
    b = p3.DynamicBatcher(SleepyModel(20.0), config(), input_shape=SHAPE).start()
    xs = torch.randn(12, *SHAPE)
    futures = [b.submit(x) for x in xs]
    b.close(drain=True)
    assert all(f.done() for f in futures)
    for f, x in zip(futures, xs):
        torch.testing.assert_close(f.result(), RowModel.expected(x))
    with pytest.raises(p3.BatcherClosed):
        b.submit(xs[0])
    b.close()                                              # twice is harmless


def test_close_without_drain_fails_the_queue_promptly(no_thread_leak):
    b = p3.DynamicBatcher(SleepyModel(50.0), config(), input_shape=SHAPE).start()
    futures = [b.submit(torch.zeros(*SHAPE)) for _ in range(20)]
    time.sleep(0.01)
    t0 = time.perf_counter()
    b.close(drain=False)
    assert time.perf_counter() - t0 < 0.3
    assert all(f.done() for f in futures)
    dropped = [f for f in futures if f.exception() is not None]
    assert len(dropped) >= 12
    assert all(isinstance(f.exception(), p3.BatcherClosed) for f in dropped)


def test_close_gives_up_on_a_stuck_model_and_fails_the_queue():
    gate = threading.Event()
    b = p3.DynamicBatcher(SleepyModel(0.0, gate=gate), config(max_batch_size=1), input_shape=SHAPE).start()
    stuck = b.submit(torch.zeros(*SHAPE))
    time.sleep(0.05)
    queued = b.submit(torch.zeros(*SHAPE))
    t0 = time.perf_counter()
    b.close(drain=True, timeout_s=0.2)
    assert time.perf_counter() - t0 < 1.0
    with pytest.raises(p3.BatcherClosed):
        queued.result(timeout=1)
    gate.set()
    stuck.result(timeout=5)                                # the batch in the model still finishes


def test_a_never_started_batcher_closes_quietly(no_thread_leak):
    p3.DynamicBatcher(RowModel(), config(), input_shape=SHAPE).close()


def test_the_worker_fails_stranded_requests_if_the_batcher_code_raises(monkeypatch):
    """The helper's safety net: a bug in _run_batch fails the requests instead of leaving them hanging."""
    b = p3.DynamicBatcher(RowModel(), config(max_queue_delay_ms=20), input_shape=SHAPE)

    def broken(batch):
        raise KeyError("bug")

    monkeypatch.setattr(b, "_run_batch", broken)
    b.start()
    futures = [b.submit(torch.zeros(*SHAPE)) for _ in range(3)]
    for f in futures:
        with pytest.raises(KeyError):
            f.result(timeout=5)
    with pytest.raises(p3.BatcherClosed):
        b.submit(torch.zeros(*SHAPE))
    b.close()
