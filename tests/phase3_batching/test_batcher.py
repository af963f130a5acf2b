"""Task 3.1: the dynamic batcher forms batches, keeps order, honours its delay, and never waits in submit.

None of these needs Task 3.2: ``started(...)`` stops the worker without ``close()`` (and
``test_task_order.py`` proves it, against a batcher whose ``close`` and ``check_request`` are stubs)."""
from __future__ import annotations

import threading
import time
from concurrent.futures import Future

import pytest
import torch

from graders.harness import settled

from .conftest import SHAPE, RowModel, SleepyModel, started
from .impl import p3

pytestmark = pytest.mark.phase3_task1


def config(**kw) -> "p3.BatcherConfig":
    kw.setdefault("max_batch_size", 8)
    kw.setdefault("max_queue_delay_ms", 2.0)
    kw.setdefault("max_queue_size", 1024)
    return p3.BatcherConfig(**kw)


def test_each_request_gets_its_own_row_from_many_threads(no_thread_leak):
    model = RowModel()
    xs = torch.randn(800, *SHAPE)
    results: dict[int, torch.Tensor] = {}

    def client(k: int) -> None:
        for i in range(k, len(xs), 16):
            results[i] = batcher.submit(xs[i]).result(timeout=10)

    with started(p3.DynamicBatcher(SleepyModel(1.0), config(), input_shape=SHAPE)) as batcher:
        threads = [threading.Thread(target=client, args=(k,)) for k in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        stats = settled(batcher.stats, lambda s: s.completed >= len(xs))   # counted once answered: read until so
    assert sorted(results) == list(range(len(xs)))
    for i, y in results.items():
        torch.testing.assert_close(y, RowModel.expected(xs[i]))
    assert stats.completed == stats.submitted == len(xs) and stats.failed == 0
    assert sum(k * v for k, v in stats.batch_sizes.items()) == len(xs)
    assert stats.mean_batch_size > 2          # 16 clients, a 1 ms model: batches form
    del model


def test_batches_never_exceed_max_batch_size():
    model = SleepyModel(5.0)
    with started(p3.DynamicBatcher(model, config(max_batch_size=4, max_queue_delay_ms=50), input_shape=SHAPE)) as b:
        futures = [b.submit(torch.randn(*SHAPE)) for _ in range(22)]
        [f.result(timeout=10) for f in futures]
    assert max(model.sizes) == 4 and sum(model.sizes) == 22
    assert model.sizes[:5] == [4, 4, 4, 4, 4]   # a full batch goes at once, without waiting for the delay


def test_submit_returns_at_once_while_the_model_runs():
    with started(p3.DynamicBatcher(SleepyModel(200.0), config(max_queue_delay_ms=0), input_shape=SHAPE)) as b:
        first = b.submit(torch.zeros(*SHAPE))
        time.sleep(0.02)                          # the worker is now inside the model
        t0 = time.perf_counter()
        second = b.submit(torch.zeros(*SHAPE))
        assert time.perf_counter() - t0 < 0.12    # waiting for the model would take about 0.18 s
        assert isinstance(second, Future) and not second.done()
        first.result(timeout=5), second.result(timeout=5)


def test_a_lone_request_waits_for_the_delay_and_no_longer():
    with started(p3.DynamicBatcher(RowModel(), config(max_queue_delay_ms=60), input_shape=SHAPE)) as b:
        b.submit(torch.zeros(*SHAPE)).result(timeout=5)   # warm-up
        t0 = time.perf_counter()
        b.submit(torch.zeros(*SHAPE)).result(timeout=5)
        waited = (time.perf_counter() - t0) * 1000
    assert 55 <= waited <= 60 + 80, waited


def test_the_delay_counts_from_the_oldest_request():
    model = RowModel()
    with started(p3.DynamicBatcher(model, config(max_queue_delay_ms=100), input_shape=SHAPE)) as b:
        t0 = time.perf_counter()
        first = b.submit(torch.zeros(*SHAPE))
        time.sleep(0.06)
        second = b.submit(torch.ones(*SHAPE))
        first.result(timeout=5)
        took = (time.perf_counter() - t0) * 1000
        second.result(timeout=5)
    # about 100 ms; a clock restarted at the second arrival makes it about 160 ms
    assert took < 100 + 45, f"the first request waited {took:.0f} ms: the clock restarted at the second arrival"
    assert model.sizes == [2]


def test_preferred_batch_sizes():
    model = SleepyModel(1.0)
    cfg = config(max_batch_size=8, max_queue_delay_ms=40, preferred_batch_sizes=(4,))
    with started(p3.DynamicBatcher(model, cfg, input_shape=SHAPE)) as b:
        futures = [b.submit(torch.randn(*SHAPE)) for _ in range(6)]
        [f.result(timeout=5) for f in futures]
    assert model.sizes == [4, 2]   # 4 at once (the preferred size), the other 2 when the delay expires


def test_cancelled_requests_are_not_computed():
    gate = threading.Event()
    model = SleepyModel(0.0, gate=gate)
    with started(p3.DynamicBatcher(model, config(max_batch_size=1, max_queue_delay_ms=0), input_shape=SHAPE)) as b:
        busy = b.submit(torch.zeros(*SHAPE))            # held at the gate inside the model
        time.sleep(0.05)
        queued = b.submit(torch.ones(*SHAPE))
        assert queued.cancel()
        gate.set()
        busy.result(timeout=5)
        b.submit(torch.zeros(*SHAPE)).result(timeout=5)
    assert model.sizes == [1, 1]


def test_submit_before_start_is_refused():
    b = p3.DynamicBatcher(RowModel(), config(), input_shape=SHAPE)
    with pytest.raises(p3.BatcherClosed):
        b.submit(torch.zeros(*SHAPE))


def test_config_is_validated():
    for bad in (dict(max_batch_size=0), dict(max_queue_delay_ms=-1), dict(max_queue_size=0),
                dict(max_batch_size=4, preferred_batch_sizes=(8,)), dict(max_queue_delay_ms=float("nan"))):
        with pytest.raises(ValueError):
            config(**bad)
    assert config(preferred_batch_sizes=(4, 2, 4)).preferred_batch_sizes == (2, 4)
    assert config(max_queue_delay_ms=5).max_queue_delay_s == pytest.approx(0.005)


def test_stats_mean_batch_size():
    s = p3.BatcherStats(batch_sizes={4: 2, 2: 1})
    assert s.mean_batch_size == pytest.approx(10 / 3)
    assert p3.BatcherStats().mean_batch_size != p3.BatcherStats().mean_batch_size   # nan


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU")
def test_batches_on_a_cuda_stream():
    model = torch.nn.Linear(8, 3).cuda().eval()

    def fn(x):
        with torch.inference_mode():
            return model(x.cuda()).cpu()

    xs = torch.randn(64, *SHAPE)
    stream = torch.cuda.Stream()
    with started(p3.DynamicBatcher(fn, config(), input_shape=SHAPE, stream=stream)) as b:
        ys = [f.result(timeout=10) for f in [b.submit(x) for x in xs]]
    with torch.inference_mode():
        want = model(xs.cuda()).cpu()
    torch.testing.assert_close(torch.stack(ys), want, atol=1e-4, rtol=1e-4)
