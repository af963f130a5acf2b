"""The timers check what the timed calls returned (after timing): right before timing, wrong while timed, no credit."""
from __future__ import annotations

import gc
import time
import weakref

import pytest
import torch

from graders.checks import as_tensor
from graders.harness import GraderTimer, paired_ratio, time_callable
from graders.phase1.workloads import busy_wait_ms
from graders.submission import SubmissionError


def _right_once():
    """``x -> 2x`` on its first call, zeros on every later one (the cheat the check is for)."""
    calls = []

    def b(x):
        calls.append(1)
        return 2 * x if len(calls) == 1 else torch.zeros_like(x)

    return b


def _doubled(out_a, out_b, inputs):
    return None if torch.equal(out_b, 2 * inputs[0]) else f"got {out_b.tolist()} for {inputs[0].tolist()}"


def _inputs():
    return (torch.randn(3),)


def test_a_model_right_on_its_first_call_only_fails_naming_the_timed_call():
    with pytest.raises(SubmissionError, match=r"^timed call 2 of 5: got \[0\.0, 0\.0, 0\.0\].* checked during timing"):
        paired_ratio(lambda x: 2 * x, _right_once(), make_inputs=_inputs, pairs=5, warmup=0, check=_doubled)
    with pytest.raises(SubmissionError, match=r"^timed call 2 of 6: "):      # counted from the warm-up pair
        paired_ratio(lambda x: 2 * x, _right_once(), make_inputs=_inputs, pairs=5, warmup=1, check=_doubled)
    with pytest.raises(SubmissionError, match=r"^timed call 2 of 8 \(warm-up\): "):
        paired_ratio(lambda x: 2 * x, _right_once(), make_inputs=_inputs, pairs=5, warmup=3, check=_doubled)


def test_every_pair_is_checked_and_a_right_model_passes():
    seen = []

    def check(out_a, out_b, inputs):
        seen.append(inputs[0])
        assert torch.equal(out_a, 2 * inputs[0])  # a's output, for the same inputs
        return _doubled(out_a, out_b, inputs)

    r = paired_ratio(lambda x: 2 * x, lambda x: x + x, make_inputs=_inputs, pairs=6, warmup=2, max_attempts=1,
                     check=check)
    assert r.ratios.n == 6 and len(seen) == 8  # the warm-up pairs too
    assert len({id(x) for x in seen}) == 8     # fresh inputs each pair


def test_a_check_is_never_inside_a_timed_region():
    def slow_check(out_a, out_b, inputs):
        time.sleep(0.01)
        return None

    r = paired_ratio(lambda: busy_wait_ms(0.5), lambda: busy_wait_ms(0.5), make_inputs=tuple, pairs=5, warmup=1,
                     max_attempts=1, check=slow_check)
    assert r.a_ms.median < 5 and r.b_ms.median < 5      # a 10 ms check would show in either side
    t = time_callable(lambda: busy_wait_ms(0.5), repeats=5, warmup=1, check=lambda out: slow_check(0, out, ()))
    assert t.median_ms < 5


def test_a_reused_output_buffer_is_checked_as_each_call_returned_it():
    buf = torch.empty(3)

    def b(x):  # right every time, into the same tensor
        return torch.mul(x, 2, out=buf)

    paired_ratio(lambda x: 2 * x, b, make_inputs=_inputs, pairs=5, warmup=1, max_attempts=1, check=_doubled)


def test_a_submission_error_raised_by_the_check_is_the_problem():
    def check(out_a, out_b, inputs):
        as_tensor(out_b, "your output", shape=(3,))

    with pytest.raises(SubmissionError, match=r"timed call 1 of 3: your output should be a torch.Tensor, got str"):
        paired_ratio(lambda x: x, lambda x: "fast", make_inputs=_inputs, pairs=3, warmup=0, check=check)


def test_outputs_are_released_once_checked():
    class Out:
        pass

    made: list[weakref.ref] = []

    def b():
        o = Out()
        made.append(weakref.ref(o))
        return o

    paired_ratio(lambda: None, b, make_inputs=tuple, pairs=4, warmup=1, max_attempts=1, check=lambda a, o, i: None)
    gc.collect()
    assert len(made) == 5 and all(r() is None for r in made)


def test_learner_only_timers_check_every_call_with_its_arguments():
    xs = iter(range(1, 100))
    calls = []

    def fn(x):
        calls.append(x)
        return x * 2 if len(calls) == 1 else 0

    with pytest.raises(SubmissionError, match=r"^timed call 2 of 5 \(warm-up\): 0 for 1"):  # the warm-up reuses the first input
        time_callable(fn, repeats=3, warmup=2, setup=lambda: (next(xs),),
                      check=lambda out, x: None if out == 2 * x else f"{out} for {x}")
    calls.clear()
    t = time_callable(lambda x: 2 * x, repeats=4, warmup=1, setup=lambda: (next(xs),),
                      check=lambda out, x: None if out == 2 * x else "wrong")
    assert t.ms.n == 4
    state = {"n": 0}

    def g():
        state["n"] += 1
        return "ok" if state["n"] <= 3 else "stale"

    with pytest.raises(SubmissionError, match=r"^timed call 4 of 7: stale"):
        GraderTimer().time(g, repeats=4, warmup=3, check=lambda out: None if out == "ok" else out)


def test_timed_through_pytest_benchmark_the_warm_up_pairs_are_checked_too(benchmark):
    with pytest.raises(SubmissionError, match=r"^timed call 2 of 6 \(warm-up\): "):
        paired_ratio(lambda x: 2 * x, _right_once(), make_inputs=_inputs, pairs=4, warmup=2, check=_doubled,
                     benchmark=benchmark)


def test_a_batcher_right_before_timing_and_wrong_while_timed_is_caught_request_by_request():
    """p3.batching.speedup's check, in process: each timed batched run against the grader's unbatched run.
    (Graded end to end, a batcher right for its first 300 answers fails the same way, in about 50 s.)"""
    from graders.harness import UnbatchedServer, closed_loop
    from graders.phase3.batching.workloads import batched_run_problem, fresh_inputs

    torch.manual_seed(0)
    model = torch.nn.Linear(8, 4).eval()
    answered = [0]

    def right_first(x):  # the "batcher": right for its first 20 answers, zeros after
        answered[0] += len(x)
        with torch.inference_mode():
            return model(x) if answered[0] <= 20 else torch.zeros(len(x), 4)

    def run(fn):
        server = UnbatchedServer(fn).start()
        return lambda xs: closed_loop(server.submit, xs, concurrency=4, total_timeout_s=10)

    def check(ref, got, inputs):
        return batched_run_problem(model, inputs[0], ref, got, "cpu", 1e-4)

    def grader(x):
        with torch.inference_mode():
            return model(x)

    make = lambda: (fresh_inputs(16, (8,)),)  # noqa: E731
    with pytest.raises(SubmissionError, match=r"^timed call 2 of 4: 12 of 16 requests got a wrong answer \(first: request "):
        paired_ratio(run(grader), run(right_first), make_inputs=make, pairs=3, warmup=1, max_attempts=1, check=check)
    answered[0] = -10**9   # right on every call now
    paired_ratio(run(grader), run(right_first), make_inputs=make, pairs=3, warmup=1, max_attempts=1, check=check)


def test_the_tradeoff_latency_is_timed_on_images_whose_answers_are_checked():
    """p2.quantization.tradeoff times each row's predictor on one image per class in turn; a predictor that
    stops computing once timed (a constant answer) fails the criterion, naming the row."""
    from graders.phase2.quantization.test_tradeoff import _grader_latency

    probes = torch.arange(10, dtype=torch.float32).reshape(10, 1, 1, 1).expand(10, 3, 4, 4).contiguous()
    answers = list(range(10))                       # image i is of class i

    def right(x):                                   # [1, 3, 4, 4] -> [1, 10], the class is the pixel value
        return torch.nn.functional.one_hot(x[:, 0, 0, 0].long(), 10).float()

    ok, ms = _grader_latency(right, probes, answers, lat=0.01, v="fp32_eager")
    assert ms > 0
    seen = []

    def constant(x):
        seen.append(1)
        return right(x) if len(seen) <= 1 else torch.zeros(1, 10)

    with pytest.raises(SubmissionError, match=r"timed call 4 of 18: the int8 predictor answered class 0 for a test "
                                              r"image it had classified as 1"):   # the warm-up reuses image 0
        _grader_latency(constant, probes, answers, lat=0.01, v="int8")


class _DisabledBenchmark:
    """What pytest-benchmark's fixture is under ``--benchmark-disable`` or pytest-xdist: it runs once, times nothing."""
    disabled = True
    extra_info: dict = {}

    def pedantic(self, target, *args, setup=None, **kwargs):
        call_args = setup()[0] if setup else ()
        return target(*call_args)


def test_a_disabled_benchmark_fixture_leaves_the_timing_to_the_grader():
    timing = GraderTimer(_DisabledBenchmark()).time(lambda: 1, repeats=7, warmup=2)
    assert timing.ms.n == 7
    result = paired_ratio(lambda x: 2 * x, lambda x: 2 * x, make_inputs=_inputs, pairs=4, warmup=2, check=_doubled,
                          benchmark=_DisabledBenchmark())
    assert result.ratios.n >= 4       # four pairs per attempt; a noisy first attempt earns another
