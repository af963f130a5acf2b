"""Task 3.8: the router answers every request right, spreads the load, survives a dead worker, and cleans up.

Worker processes are real (spawned, pinned to a core each); the models are tiny, so each router starts in
about two seconds and a test takes a few.
"""
from __future__ import annotations

import os
import signal
import time

import psutil
import pytest
import torch

from graders.harness import settled

from . import fakes
from .impl import p3g

pytestmark = pytest.mark.phase3_task8

CONFIG = dict(max_batch_size=8, max_queue_delay_ms=1.0, threads_per_worker=1, start_timeout_s=60.0)


def two_devices():
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs 2 CPU cores (one per worker)")
    return p3g.cpu_devices(2)


def router(factory=fakes.rows, **cfg):
    return p3g.DeviceRouter(factory, fakes.SHAPE, two_devices(), p3g.RouterConfig(**{**CONFIG, **cfg}))


def answers(r, xs, timeout=30):
    return torch.stack([f.result(timeout) for f in [r.submit(x) for x in xs]])


def gone(pids, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]:
            return True
        time.sleep(0.05)
    return False


@pytest.fixture(scope="module")
def served():
    r = router(fakes.poisoned).start()
    yield r
    r.close()


def test_every_request_gets_its_own_row_from_both_devices(served):
    before = served.stats().completed
    xs = torch.randn(400, *fakes.SHAPE)
    got = answers(served, xs)
    torch.testing.assert_close(got, fakes.Rows.expected(xs))
    done = settled(lambda: [a - b for a, b in zip(served.stats().completed, before)], lambda d: sum(d) >= 400)
    assert sum(done) == 400 and min(done) > 0, done      # both devices served


def test_a_bad_request_is_refused_by_submit_and_nothing_is_queued(served):
    with pytest.raises(ValueError, match="shape"):
        served.submit(torch.zeros(2, *fakes.SHAPE))
    with pytest.raises(ValueError):
        served.submit([0.0] * 8)
    with pytest.raises(ValueError):
        served.submit(torch.zeros(fakes.SHAPE, dtype=torch.float64))
    x = torch.randn(fakes.SHAPE)
    torch.testing.assert_close(served.submit(x).result(10), fakes.Rows.expected(x))


def test_a_model_error_fails_its_batch_only(served):
    bad = torch.zeros(fakes.SHAPE)
    bad[0] = fakes.POISON
    with pytest.raises(p3g.WorkerFailed, match="poisoned"):
        served.submit(bad).result(10)
    xs = torch.randn(32, *fakes.SHAPE)
    torch.testing.assert_close(answers(served, xs), fakes.Rows.expected(xs))


def test_a_killed_worker_loses_no_request():
    r = router(fakes.slow_rows).start()
    try:
        pids = r.worker_pids()
        xs = torch.randn(240, *fakes.SHAPE)
        futures = [r.submit(x) for x in xs]
        time.sleep(0.1)
        os.kill(pids[0], signal.SIGKILL)
        got = torch.stack([f.result(30) for f in futures])
        torch.testing.assert_close(got, fakes.Rows.expected(xs))
        s = r.stats()
        assert s.alive == [False, True] and s.rerouted > 0 and s.failed == 0, s
        x = torch.randn(fakes.SHAPE)   # still serving, on the device left
        torch.testing.assert_close(r.submit(x).result(10), fakes.Rows.expected(x))
    finally:
        r.close()
    assert gone(pids)


def test_with_every_worker_dead_requests_fail_fast_with_no_device_left():
    r = router(fakes.slow_rows).start()
    try:
        futures = [r.submit(x) for x in torch.randn(64, *fakes.SHAPE)]
        for pid in r.worker_pids():
            os.kill(pid, signal.SIGKILL)
        errors = set()
        for f in futures:
            try:
                f.result(15)
            except p3g.NoDeviceLeft:
                errors.add("NoDeviceLeft")
        assert errors == {"NoDeviceLeft"}
        deadline = time.monotonic() + 5
        while any(r.stats().alive) and time.monotonic() < deadline:
            time.sleep(0.02)
        with pytest.raises(p3g.NoDeviceLeft):
            r.submit(torch.zeros(fakes.SHAPE))
    finally:
        r.close()


def test_close_without_drain_fails_what_waits_and_stops_everything():
    r = router(fakes.slow_rows, max_batch_size=4).start()
    pids = r.worker_pids()
    futures = [r.submit(x) for x in torch.randn(200, *fakes.SHAPE)]
    r.close(drain=False)
    r.close()                                   # a second close does nothing
    outcomes = {"done": 0, "closed": 0}
    for f in futures:
        try:
            f.result(5)
            outcomes["done"] += 1
        except p3g.RouterClosed:
            outcomes["closed"] += 1
    assert outcomes["closed"] > 0 and sum(outcomes.values()) == 200, outcomes
    with pytest.raises(p3g.RouterClosed):
        r.submit(torch.zeros(fakes.SHAPE))
    assert gone(pids)


def test_submit_before_start_is_refused():
    r = router()
    with pytest.raises(p3g.RouterClosed):
        r.submit(torch.zeros(fakes.SHAPE))


def test_a_factory_that_fails_stops_start_with_its_traceback():
    with pytest.raises(RuntimeError, match="cannot build its model"):
        router(fakes.broken).start()


def test_cpu_workers_need_a_core_each():
    from phase3_advanced.gpu.workers import assign_cores

    n = len(os.sched_getaffinity(0))
    assert len(set(assign_cores(p3g.cpu_devices(n), 1))) == n
    with pytest.raises(ValueError, match="cores"):
        assign_cores(p3g.cpu_devices(n + 1), 1)
    assert assign_cores(["cuda:0", "cpu:0"], 1)[0] == ()
