"""Task 3.3: a pool serves several models at once, routes by name, and keeps per-model statistics."""
from __future__ import annotations

import threading
import time

import pytest
import torch

from graders.harness import settled

from .impl import p3

pytestmark = pytest.mark.phase3_task3


class Scaled:
    """``[B, *shape] -> [B, 2]``: (sum * k, mean); sleeps ``ms`` per call; logs its calls' times."""

    def __init__(self, k: float, ms: float = 0.0):
        self.k, self.ms, self.calls = k, ms, []

    def expected(self, x):
        return torch.stack([x.sum() * self.k, x.mean()])

    def __call__(self, b):
        t0 = time.perf_counter()
        time.sleep(self.ms / 1000)
        flat = b.reshape(b.shape[0], -1)
        self.calls.append((t0, time.perf_counter()))
        return torch.stack([flat.sum(1) * self.k, flat.mean(1)], dim=1)


SHAPES = {"a": (4,), "b": (2, 3), "c": (1, 4, 4), "d": (16,)}


def make_pool(ms: float = 0.0, **cfg):
    models = {name: Scaled(k, ms) for k, name in enumerate(SHAPES, start=1)}
    specs = [p3.ModelSpec(name, models[name], SHAPES[name]) for name in SHAPES]
    config = p3.BatcherConfig(max_batch_size=cfg.get("mbs", 4), max_queue_delay_ms=cfg.get("delay", 1.0))
    return models, p3.ModelPool(specs, config)


def test_every_model_answers_its_own_requests_under_concurrent_load(no_thread_leak):
    models, pool = make_pool(ms=1.0)
    sent = {name: [] for name in SHAPES}
    errors = []

    def client(name):
        try:
            for _ in range(40):
                x = torch.randn(*SHAPES[name])
                sent[name].append((x, pool.submit(name, x)))
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    with pool:
        threads = [threading.Thread(target=client, args=(n,)) for n in SHAPES for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for name, pairs in sent.items():
            for x, f in pairs:
                torch.testing.assert_close(f.result(timeout=10), models[name].expected(x))
        stats = settled(pool.stats, lambda st: all(st[n].completed >= 80 for n in SHAPES if n in st))
    assert not errors
    assert list(stats) == list(SHAPES) == pool.names
    for name in SHAPES:
        assert stats[name].completed == 80 and stats[name].batches == len(models[name].calls)


def test_models_compute_at_the_same_time():
    models, pool = make_pool(ms=100.0)
    with pool:
        futures = [pool.submit(name, torch.zeros(*shape)) for name, shape in SHAPES.items()]
        t0 = time.perf_counter()
        for f in futures:
            f.result(timeout=5)
        took = time.perf_counter() - t0
    assert took < 0.3, f"4 models of 100 ms each took {took:.2f} s: they ran one after another"
    starts = [m.calls[0][0] for m in models.values()]
    assert max(starts) - min(starts) < 0.05


def test_close_drains_every_model_in_parallel(no_thread_leak):
    models, pool = make_pool(ms=60.0, mbs=1)
    pool.start()
    futures = [pool.submit(name, torch.zeros(*shape)) for name, shape in SHAPES.items() for _ in range(3)]
    t0 = time.perf_counter()
    pool.close(drain=True)
    took = time.perf_counter() - t0
    assert all(f.done() and f.exception() is None for f in futures)
    assert took < 0.45, f"closing took {took:.2f} s: the batchers were closed one after another"


def test_unknown_names_and_bad_specs_are_refused():
    _, pool = make_pool()
    with pool:
        with pytest.raises(p3.InvalidRequest, match="a"):
            pool.submit("nope", torch.zeros(4))
        with pytest.raises(p3.InvalidRequest):
            pool.submit("a", torch.zeros(5))       # the right name, the wrong shape
    spec = p3.ModelSpec("x", lambda b: b, (2,))
    with pytest.raises(ValueError):
        p3.ModelPool([spec, spec])
    with pytest.raises(ValueError):
        p3.ModelPool([])


def test_model_spec_is_validated():
    with pytest.raises(ValueError):
        p3.ModelSpec("", lambda b: b, (2,))
    with pytest.raises(ValueError):
        p3.ModelSpec("m", lambda b: b, (0,))
    with pytest.raises(ValueError):
        p3.ModelSpec("m", lambda b: b, (2,), device="tpu")
    assert p3.ModelSpec("m", lambda b: b, [3, 4]).input_shape == (3, 4)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU")
def test_cuda_models_get_their_own_streams():
    nets = {n: torch.nn.Linear(8, 4).cuda().eval() for n in "abcd"}

    def fn_for(net):
        def fn(x):
            with torch.inference_mode():
                assert torch.cuda.current_stream() != torch.cuda.default_stream()
                return net(x.cuda()).cpu()
        return fn

    specs = [p3.ModelSpec(n, fn_for(m), (8,), device="cuda") for n, m in nets.items()]
    xs = torch.randn(32, 8)
    with p3.ModelPool(specs, p3.BatcherConfig(max_batch_size=8, max_queue_delay_ms=1)) as pool:
        got = {n: torch.stack([f.result(timeout=10) for f in [pool.submit(n, x) for x in xs]]) for n in nets}
    for n, net in nets.items():
        with torch.inference_mode():
            torch.testing.assert_close(got[n], net(xs.cuda()).cpu(), atol=1e-4, rtol=1e-4)
