"""The grader's own load generator (graders/harness/load.py), which decides Phase 3's grades.

These test the grader, not your code: they run the same in the course repository and the learner copy.
"""
from __future__ import annotations

import math
import time
from concurrent.futures import Future

import numpy as np
import pytest
import torch

from graders.harness import UnbatchedServer, closed_loop, max_overlap, poisson

from .conftest import InstantServer


def test_closed_loop_records_each_request_in_order():
    server = InstantServer(ms=5.0, refuse={4})
    xs = [torch.full((2,), float(i)) for i in range(40)]
    run = closed_loop(server.submit, xs, concurrency=4)
    assert server.max_in_flight == 4 and len(server.arrivals) == 40
    assert run.completed == 39 and run.failed == 1 and isinstance(run.errors[4], RuntimeError)
    for i, y in enumerate(run.outputs):
        if i != 4:
            assert torch.equal(y, xs[i]) and run.latency_ms[i] >= 5.0
    assert math.isnan(run.latency_ms[4]) and run.throughput == pytest.approx(39 / run.duration_s)


def test_closed_loop_times_out_instead_of_hanging():
    never: list[Future] = []

    def submit(x):
        never.append(Future())
        return never[-1]

    t0 = time.monotonic()
    run = closed_loop(submit, [0, 1, 2], concurrency=3, result_timeout_s=0.2)
    assert time.monotonic() - t0 < 2
    assert run.failed == 3 and all(isinstance(e, TimeoutError) for e in run.errors)


def test_closed_loop_refuses_a_submit_that_returns_no_future():
    run = closed_loop(lambda x: x, [1, 2], concurrency=1)
    assert run.failed == 2 and "Future" in str(run.errors[0])


def test_poisson_counts_from_the_scheduled_time():
    server = InstantServer(ms=20.0)
    run = poisson(server.submit, list(range(150)), rate_per_s=300, seed=0)
    assert run.completed == 150 and server.max_in_flight >= 3  # it never waits for an answer
    # The seeded schedule, as the generator draws it; a send may leave late (the machine's stall,
    # reported in lag_ms) but never early, and its latency is counted from when it was due.
    due_s = np.cumsum(np.random.default_rng(0).exponential(1 / 300, size=150))
    lag_ms = np.asarray(run.lag_ms)
    sent_s = np.asarray(server.arrivals) - server.arrivals[0]
    assert (sent_s >= due_s - due_s[0] - lag_ms[0] / 1e3 - 1e-3).all()
    assert (np.asarray(run.latency_ms) >= 19.0 + lag_ms - 1.0).all()
    assert 0.7 < np.diff(due_s).std() / np.diff(due_s).mean() < 1.3  # exponential gaps
    assert due_s[-1] <= run.duration_s < due_s[-1] + 5.0


def test_unbatched_server_runs_one_request_per_call():
    sizes = []

    def model(batch):
        sizes.append(batch.shape[0])
        return batch * 2

    server = UnbatchedServer(model).start()
    run = closed_loop(server.submit, [torch.full((3,), float(i)) for i in range(20)], concurrency=8)
    server.close()
    assert sizes == [1] * 20 and run.completed == 20
    assert torch.equal(run.outputs[7], torch.full((3,), 14.0))


def test_max_overlap():
    assert max_overlap([("a", 0, 10), ("b", 5, 15), ("c", 6, 7), ("a", 8, 20)]) == (3, pytest.approx(10 / 20))
    assert max_overlap([("a", 0, 10), ("a", 5, 15)]) == (1, 0.0)
