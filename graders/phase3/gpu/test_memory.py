"""Task 3.7: memory under a budget, judged by the grader's own peak measurements (:mod:`.memory_probe`).

* ``p3.gpu.memory_predict``: the learner's line, fitted from their own measurements at batches 2 and 8 of a
  CNN the grader draws at random, against the peak the grader measures itself at larger batches it picks.
* ``p3.gpu.memory_budget``: the learner's largest batch under budgets set from the grader's measurements
  (checked against the grader's own search), and the learner's ``OomSafeRunner`` on a grader model that
  raises ``torch.OutOfMemoryError`` above a hidden chunk size (fault injection, exact on any machine); on a
  GPU also under a real cap on CUDA memory (``set_per_process_memory_fraction``), lifted afterwards.
* ``p3.gpu.memory_lean``: the peak of the learner's ``lean_forward`` over the peak of a naive server (float32,
  autograd on), same batch, same probe; gated by the outputs, by the forward being seen on the calling thread
  and by a throughput at least 0.9x the naive server's (paired timing, same run; it fails when the whole
  confidence interval of the median ratio lies below 0.9x, so machine noise alone cannot fail the reference,
  whose ratio is 0.97-1.18x here, while a batch-1 loop runs at ~0.23x).
"""
from __future__ import annotations

import copy
import math
import random
import threading
from typing import Any, Callable

import torch

from ...checks import as_float, as_int, expect, get_field
from ...harness import paired_ratio
from ...plugin import criterion
from ...submission import LearnerError, SubmissionError
from ..batching.common import cpu_threads, no_tf32
from ..batching.workloads import build, chain_text, expected_outputs, fresh_inputs
from .memory_probe import (call_peak, compute_layers, cuda_memory_cap, forward_peak, largest_fitting, naive_peak,
                           random_cnn, warm_up)

#: The batch sizes the learner's fit measures, per device (small: a fit must be cheap and never run out of
#: memory itself; on a GPU a little larger, so that cuDNN's workspace choices at tiny batches weigh less).
FIT_BATCHES = {"cpu": (2, 8), "cuda": (8, 32)}
#: Where the grader checks the prediction, per (device, quick): (low, high, how many batches).
PREDICT_AT = {("cpu", True): (24, 40, 1), ("cpu", False): (24, 64, 2),
              ("cuda", True): (64, 256, 1), ("cuda", False): (64, 512, 2)}
#: The batch the grader's budget is cut at, per (device, quick): (low, high).
BUDGET_AT = {("cpu", True): (10, 24), ("cpu", False): (12, 40), ("cuda", True): (64, 256), ("cuda", False): (96, 512)}
#: The smaller CNNs of the quick mode (each forward at batch 40 well under 0.1 s on one core).
QUICK_CNN = dict(widths=(16, 24, 32), sizes=(32, 40, 48))
BUDGET_LIMIT = 1024
#: A batch within this share of the true largest passes (the learner's measurements may differ slightly).
NEAR_LARGEST = 0.9
#: OomSafeRunner: the chunk size it starts from, the range of the grader's hidden limit, rows per call.
RUNNER_START = 64
HIDDEN_LIMIT = (5, 23)
RUNNER_ROWS = (150, 260)
CALL_TIMEOUT_S = 10.0
#: The lean server: the model and batch per device, the throughput it must keep against the naive server.
LEAN_MODEL = "digits_resnet18"
LEAN_BATCH = {"cpu": 32, "cuda": 128}
MIN_SPEED = 0.9


def _device(grade) -> str:
    return "cuda" if grade.cuda else "cpu"


def _mode(grade) -> tuple[str, bool]:
    return _device(grade), bool(grade.quick)


def _guarded(fn: Callable[[], Any], what: str, timeout_s: float = CALL_TIMEOUT_S) -> tuple[Any, BaseException | None]:
    """``fn()`` on a grader thread, at most ``timeout_s``: (its value, None) or (None, what it raised).
    A call still running after ``timeout_s`` fails the criterion (an endless retry loop)."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - handed back to the grader's thread
            box["error"] = e

    t = threading.Thread(target=run, name="grader-oom-runner", daemon=True)
    t.start()
    t.join(timeout_s)
    if t.is_alive():
        raise SubmissionError(f"{what} did not return within {timeout_s:g} s: does it stop retrying once a chunk of "
                              f"one row has failed, and move on to the next chunk after a success?")
    return box.get("value"), box.get("error")


def _not_implemented(e: BaseException | None) -> None:
    if isinstance(e, NotImplementedError):
        raise LearnerError(f"not implemented yet: {e}", not_implemented=True)


# ## p3.gpu.memory_predict #####################################################################

def _memory_model_fields(mm: Any) -> tuple[float, float, tuple[int, ...], tuple[int, ...]]:
    what = "fit_memory_model(...)'s result"
    fixed = as_float(get_field(mm, "fixed_bytes", what), "MemoryModel.fixed_bytes")
    slope = as_float(get_field(mm, "bytes_per_sample", what), "MemoryModel.bytes_per_sample")
    sizes_raw, measured_raw = get_field(mm, "batch_sizes", what), get_field(mm, "measured_bytes", what)
    expect(isinstance(sizes_raw, (tuple, list)) and isinstance(measured_raw, (tuple, list)),
           "MemoryModel.batch_sizes and .measured_bytes should be tuples (one entry per batch size measured)")
    sizes = tuple(as_int(b, "MemoryModel.batch_sizes[i]") for b in sizes_raw)
    measured = tuple(as_int(m, "MemoryModel.measured_bytes[i]") for m in measured_raw)
    return fixed, slope, sizes, measured


@criterion("p3.gpu.memory_predict")
def test_memory_predict(grade, learner):
    """Your line from batches 2 and 8 against the grader's own measurement at larger batches."""
    rng = random.SystemRandom()
    dev = _device(grade)
    low, high, count = PREDICT_AT[_mode(grade)]
    with cpu_threads(grade):
        model, shape, desc = random_cnn(rng, dev, **(QUICK_CNN if grade.quick and dev == "cpu" else {}))
        warm_up(model, shape, dev)
        fit_at = FIT_BATCHES[dev]
        mm = learner.call("fit_memory_model", copy.deepcopy(model), shape, device=dev, batch_sizes=fit_at)
        fixed, slope, sizes, measured = _memory_model_fields(mm)
        problems = []
        if not slope > 0:
            problems.append(f"bytes_per_sample is {slope:g}: the peak grows with the batch, the slope must be > 0")
        if sizes != fit_at:
            problems.append(f"batch_sizes is {sizes}, expected the sizes the grader asked for, {fit_at}")
        if len(measured) != len(sizes) or any(m <= 0 for m in measured):
            problems.append(f"measured_bytes {measured} should hold one peak > 0 per batch size {sizes}")
        else:
            off = [(b, m) for b, m in zip(sizes, measured) if abs(fixed + slope * b - m) > 0.01 * m + 512]
            if off:
                b, m = off[0]
                problems.append(f"the line fixed_bytes + bytes_per_sample * batch gives {fixed + slope * b:.0f} bytes at "
                                f"batch {b}, but you measured {m} there: fit the line through your own measurements")
        grader_fit = {b: forward_peak(model, torch.randn(b, *shape), dev) for b in fit_at}
        details: dict[str, Any] = {
            "model": desc, "your_fixed_bytes": fixed, "your_bytes_per_sample": slope,
            "your_measured_bytes": dict(zip((str(b) for b in sizes), measured)),
            "grader_measured_bytes": {str(b): p for b, p in grader_fit.items()}, "problems": problems}
        if problems:
            grade.fail("your MemoryModel is not a usable fit: " + "; ".join(problems), details=details)
            return
        batches = sorted(rng.sample(range(low, high + 1), count))
        errors, rows = [], {}
        for b in batches:
            truth = forward_peak(model, torch.randn(b, *shape), dev)
            predicted = fixed + slope * b
            errors.append(100.0 * abs(predicted - truth) / truth)
            rows[str(b)] = {"predicted_bytes": round(predicted), "measured_bytes": truth, "error_pct": errors[-1]}
    worst = max(errors)
    at = batches[errors.index(worst)]
    details.update({"checked_batches": rows, "prediction_error_pct": worst})
    grade.record(worst, details=details,
                 message=f"{desc}: your line ({fixed / 1e6:.2f} MB + {slope / 1e6:.3f} MB x batch, from batches "
                         f"{fit_at}) predicted {rows[str(at)]['predicted_bytes'] / 1e6:.2f} MB at batch {at}; the "
                         f"grader measured {rows[str(at)]['measured_bytes'] / 1e6:.2f} MB ({worst:.1f} % off"
                         f"{'' if len(batches) == 1 else f', the worst of batches {batches}'})")


# ## p3.gpu.memory_budget ######################################################################

class _Faulty:
    """The grader's model for the runner: row i -> tanh(x_i @ W), raising ``torch.OutOfMemoryError`` on any chunk
    of more than ``limit`` rows (``limit=0``: every chunk), or ``ValueError`` on a chunk holding a poisoned row."""

    POISON = 777.0

    def __init__(self, limit: int, width: int, seed: int):
        self.limit = limit
        self.w = torch.randn(width, 8, generator=torch.Generator().manual_seed(seed))
        self.calls: list[tuple[int, bool]] = []   # (rows, out of memory?)
        self.raised: ValueError | None = None
        self._lock = threading.Lock()

    @property
    def ooms(self) -> int:
        with self._lock:
            return sum(1 for _, oom in self.calls if oom)

    def truth(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x @ self.w)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        rows = int(x.shape[0])
        oom = rows > self.limit
        with self._lock:
            self.calls.append((rows, oom))
        if oom:
            raise torch.OutOfMemoryError(f"CUDA out of memory (grader's fault injection: a chunk of {rows} rows)")
        if bool((x[:, 0] == self.POISON).any()):
            self.raised = ValueError("grader: this chunk holds a poisoned row")
            raise self.raised
        return self.truth(x)


def _rows_problem(y: Any, want: torch.Tensor, atol: float) -> str | None:
    if not isinstance(y, torch.Tensor):
        return f"returned {type(y).__name__}, expected a tensor"
    if tuple(y.shape) != tuple(want.shape):
        return f"returned shape {tuple(y.shape)}, expected {tuple(want.shape)} (one output row per input row)"
    diff = (y.detach().float().cpu() - want).abs().amax(dim=tuple(range(1, want.dim())))
    bad = torch.nonzero(~(diff <= atol)).flatten().tolist()
    if bad:
        return (f"{len(bad)} of {len(want)} rows wrong or out of order (first: row {bad[0]}, "
                f"|difference| {float(diff[bad[0]]):.3g})")
    return None


def _budget_checks(learner, rng: random.Random, dev: str, quick: bool, checks: dict, figures: dict) -> None:
    """(a) the largest batch under the grader's budgets: fits, near the true largest, 0 and ``limit`` cases."""
    model, shape, desc = random_cnn(rng, dev, **(QUICK_CNN if quick and dev == "cpu" else {}))
    warm_up(model, shape, dev)
    low, high = BUDGET_AT[(dev, quick)]
    cut = rng.randint(low, high)
    p_cut, p_next = (forward_peak(model, torch.randn(b, *shape), dev) for b in (cut, cut + 1))
    budget = p_cut + int(rng.uniform(0.2, 0.8) * (p_next - p_cut))
    true, seen = largest_fitting(model, shape, budget, dev, limit=BUDGET_LIMIT, hint=cut)
    figures.update({"model": desc, "budget_bytes": budget, "true_largest_batch": true})

    def ask(budget_bytes: int, limit: int) -> int:
        learner_model = copy.deepcopy(model)
        if dev == "cuda":   # real out-of-memory errors for a search that probes far beyond the budget
            with cuda_memory_cap(dev, int(budget_bytes * 1.5) + (256 << 20)):
                got = learner.call("largest_batch_under_budget", learner_model, shape, budget_bytes, device=dev,
                                   limit=limit)
        else:
            got = learner.call("largest_batch_under_budget", learner_model, shape, budget_bytes, device=dev, limit=limit)
        return as_int(got, "largest_batch_under_budget(...)")

    def judge(name: str, got: int, budget_bytes: int, limit: int, want: int) -> None:
        if not 0 <= got <= limit:
            checks[name] = f"answered {got}, outside 0..limit={limit}"
            return
        peak = seen.get(got) if got else 0
        if got and peak is None:
            peak = seen[got] = forward_peak(model, torch.randn(got, *shape), dev)
        if got and peak > budget_bytes:
            checks[name] = (f"batch {got} peaks at {peak} bytes (grader's measurement), over the budget of "
                            f"{budget_bytes}: measure your candidate, do not trust the line alone")
        elif got < math.ceil(NEAR_LARGEST * want):
            checks[name] = (f"answered {got}; the largest batch that fits is {want} (grader's search): "
                            f"at least {math.ceil(NEAR_LARGEST * want)} needed")
        else:
            checks[name] = True

    got = ask(budget, BUDGET_LIMIT)
    figures["your_largest_batch"] = got
    judge("largest_batch_fits_and_is_near_the_largest", got, budget, BUDGET_LIMIT, true)
    p_one = seen.get(1) or forward_peak(model, torch.randn(1, *shape), dev)
    tiny = ask(p_one // 2, BUDGET_LIMIT)
    checks["budget_below_batch_1_gives_0"] = True if tiny == 0 else (
        f"answered {tiny} for a budget of {p_one // 2} bytes, half of batch 1's peak ({p_one}): nothing fits, "
        f"the answer is 0")
    if not quick:
        small_limit = max(2, cut // 2)
        capped = ask(p_next, small_limit)
        judge("limit_respected", capped, p_next, small_limit, small_limit)


def _runner_checks(learner, rng: random.Random, checks: dict, figures: dict) -> None:
    """(b) OomSafeRunner on the grader's fault-injecting model: rows, halving, counters, recovery, propagation."""
    limit = rng.randint(*HIDDEN_LIMIT)
    width = rng.randint(8, 24)
    fake = _Faulty(limit, width, rng.randrange(2**31))
    runner = learner.call("OomSafeRunner", fake, RUNNER_START)
    expect(callable(runner), f"OomSafeRunner(...) is not callable (got {type(runner).__name__}): write __call__")
    n = rng.randint(*RUNNER_ROWS)
    x = torch.randn(n, width)
    y, err = _guarded(lambda: runner(x), f"OomSafeRunner(model_fn, max_batch={RUNNER_START})(x of {n} rows)")
    _not_implemented(err)
    ooms = fake.ooms
    max_batch = as_int(get_field(runner, "max_batch", "your OomSafeRunner"), "OomSafeRunner.max_batch")
    events = as_int(get_field(runner, "oom_events", "your OomSafeRunner"), "OomSafeRunner.oom_events")
    halvings = math.ceil(math.log2(RUNNER_START / limit))
    figures.update({"hidden_limit": limit, "runner_rows": n, "oom_errors_raised": ooms, "your_oom_events": events,
                    "your_max_batch_after": max_batch, "chunk_sizes_tried": [r for r, _ in fake.calls][:12]})
    if err is not None:
        checks["every_row_answered_in_order"] = f"the call raised {chain_text(err)[:200]}"
    else:
        checks["every_row_answered_in_order"] = _rows_problem(y, fake.truth(x), 1e-5) or True
    first = fake.calls[0][0] if fake.calls else 0
    too_big = [r for r, _ in fake.calls if r > RUNNER_START]
    checks["chunks_of_at_most_max_batch"] = (
        f"the first chunk had {first} rows, expected min(max_batch={RUNNER_START}, rows={n})" if first != min(RUNNER_START, n)
        else f"a chunk of {too_big[0]} rows, above max_batch={RUNNER_START}" if too_big else True)
    checks["max_batch_ends_between_limit_half_and_limit"] = (
        True if limit / 2 <= max_batch <= limit else
        f"max_batch ended at {max_batch}; chunks above {limit} rows run out of memory, so it should end between "
        f"{limit / 2:g} and {limit} (halve the failed chunk's size)")
    checks["oom_events_counted"] = True if events == ooms else (
        f"oom_events is {events}, but the grader's model raised torch.OutOfMemoryError {ooms} times")
    checks["a_few_halvings_not_one_row_at_a_time"] = True if ooms <= halvings + 1 else (
        f"{ooms} out-of-memory errors before chunks fit: halving from {RUNNER_START} takes {halvings}")
    # The service stays up: the next call starts from the size that worked, without a new error.
    before = fake.ooms
    x2 = torch.randn(rng.randint(*RUNNER_ROWS), width)
    y2, err2 = _guarded(lambda: runner(x2), "the next call of your OomSafeRunner")
    if err2 is not None:
        checks["next_call_served_without_new_oom"] = f"the next call raised {chain_text(err2)[:200]}"
    else:
        problem = _rows_problem(y2, fake.truth(x2), 1e-5)
        new = fake.ooms - before
        checks["next_call_served_without_new_oom"] = problem or (True if new == 0 else (
            f"the next call hit {new} new out-of-memory errors: keep the max_batch that worked"))
    # Another error is the caller's business: propagated unchanged, counters untouched.
    x3 = torch.randn(3 * limit, width)
    x3[rng.randrange(len(x3)), 0] = _Faulty.POISON
    mb_before, ev_before, ooms_before = runner.max_batch, runner.oom_events, fake.ooms
    _, err3 = _guarded(lambda: runner(x3), "your OomSafeRunner on a model that raises ValueError")
    if err3 is None:
        checks["other_errors_propagate_unchanged"] = "a ValueError from the model was swallowed: the call returned"
    elif err3 is not fake.raised:
        checks["other_errors_propagate_unchanged"] = (f"the model's ValueError reached the caller as {chain_text(err3)[:160]}: "
                                                       f"let anything but torch.OutOfMemoryError propagate unchanged")
    elif fake.ooms == ooms_before and (runner.max_batch, runner.oom_events) != (mb_before, ev_before):
        checks["other_errors_propagate_unchanged"] = "a ValueError changed max_batch or oom_events: only out-of-memory does"
    else:
        checks["other_errors_propagate_unchanged"] = True
    # A model that fails even on one row: an error, soon, never an endless loop.
    hopeless = _Faulty(0, width, 1)
    runner4 = learner.call("OomSafeRunner", hopeless, 8)
    _, err4 = _guarded(lambda: runner4(torch.randn(20, width)), "your OomSafeRunner on a model that never fits")
    tried = [r for r, _ in hopeless.calls]
    checks["gives_up_below_one_row"] = (
        "the call returned although every chunk, even of one row, ran out of memory" if err4 is None
        else f"raised {type(err4).__name__}, expected an exception" if not isinstance(err4, Exception)
        else f"gave up after chunks of {tried} rows: halve down to one row before giving up" if 1 not in tried
        else True)
    figures["error_when_nothing_fits"] = None if err4 is None else f"{type(err4).__name__}: {str(err4)[:120]}"


def _cuda_runner_check(learner, rng: random.Random, checks: dict, figures: dict) -> None:
    """On a GPU: the runner under a real cap on CUDA memory (the real allocator raises, not the grader)."""
    dev = "cuda"
    model, shape, desc = random_cnn(rng, dev)
    warm_up(model, shape, dev)
    target = rng.randint(128, 512)
    cap = forward_peak(model, torch.randn(target, *shape), dev) + (32 << 20)
    start = 4096

    def model_fn(chunk: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return model(chunk.to(dev)).float().cpu()

    x = fresh_inputs(start + rng.randint(1, 500), shape)
    want = expected_outputs(model, x, dev)
    runner = learner.call("OomSafeRunner", model_fn, start)
    with cuda_memory_cap(dev, cap):
        y, err = _guarded(lambda: runner(x), "your OomSafeRunner under a CUDA memory cap", timeout_s=60)
        events = runner.oom_events
        y2, err2 = _guarded(lambda: runner(x[: len(x) // 2]), "the next call under the same cap", timeout_s=60)
    figures["cuda_cap"] = {"model": desc, "cap_bytes": cap, "your_oom_events": events,
                           "your_max_batch_after": runner.max_batch}
    problem = (f"raised {chain_text(err)[:200]}" if err is not None else _rows_problem(y, want, 1e-3)
               or (None if events >= 1 and runner.max_batch < start else
                   f"no out-of-memory was handled (oom_events {events}, max_batch {runner.max_batch})"))
    if problem is None and err2 is not None:
        problem = f"the next call raised {chain_text(err2)[:200]}"
    elif problem is None:
        problem = _rows_problem(y2, want[: len(x) // 2], 1e-3)
    checks["real_cuda_oom_survived"] = problem or True


@criterion("p3.gpu.memory_budget")
def test_memory_budget(grade, learner):
    """(a) the largest batch under the grader's budgets; (b) OomSafeRunner on out-of-memory. Value: checks failed."""
    rng = random.SystemRandom()
    dev = _device(grade)
    no_tf32(grade)
    checks: dict[str, Any] = {}
    figures: dict[str, Any] = {}
    with cpu_threads(grade):
        _budget_checks(learner, rng, dev, grade.quick, checks, figures)
        _runner_checks(learner, rng, checks, figures)
        if dev == "cuda":
            _cuda_runner_check(learner, rng, checks, figures)
    failed = [f"{name}: {v}" for name, v in checks.items() if v is not True]
    details = {**figures, "checks": checks, "checks_failed": len(failed)}
    if failed:
        grade.record(len(failed), details=details,
                     message=f"{len(failed)} of {len(checks)} checks failed: " + "; ".join(failed)[:900])
        return
    grade.record(0, details=details,
                 message=f"all {len(checks)} checks passed: batch {figures['your_largest_batch']} under a budget of "
                         f"{figures['budget_bytes'] / 1e6:.2f} MB (largest: {figures['true_largest_batch']}, "
                         f"{figures['model']}); the runner answered {figures['runner_rows']} rows with "
                         f"{figures['oom_errors_raised']} out-of-memory errors and ended at max_batch "
                         f"{figures['your_max_batch_after']} (hidden limit {figures['hidden_limit']})")


# ## p3.gpu.memory_lean ########################################################################

def _lean_tolerance(dev: str) -> str:
    return "within 1e-4 of float32 eager" if dev == "cpu" else "|yours - fp32| <= 0.02 * (1 + |fp32|)"


def _lean_problem(y: Any, want: torch.Tensor, dev: str) -> str | None:
    if not isinstance(y, torch.Tensor):
        return f"your lean forward returned {type(y).__name__}, expected a tensor"
    if tuple(y.shape) != tuple(want.shape):
        return f"your lean forward returned shape {tuple(y.shape)}, expected {tuple(want.shape)}"
    got = y.detach().float().cpu()
    diff = (got - want).abs()
    allowed = torch.full_like(want, 1e-4) if dev == "cpu" else 0.02 * (1 + want.abs())
    if not bool((diff <= allowed).all()):
        return (f"outputs differ from float32 eager by up to {float(diff.max()):.3g} "
                f"(allowed: {_lean_tolerance(dev)})")
    return None


@criterion("p3.gpu.memory_lean")
def test_memory_lean(grade, learner, benchmark):
    """100 x the peak of your lean_forward / the peak of a naive float32 autograd-on server, same batch."""
    dev = _device(grade)
    no_tf32(grade)
    batch = LEAN_BATCH[dev]
    with cpu_threads(grade):
        model, shape = build(LEAN_MODEL, dev)
        serve = learner.call("lean_forward", copy.deepcopy(model), device=dev)
        expect(callable(serve), f"lean_forward(...) should return a function, got {type(serve).__name__}")
        layers = compute_layers(model)

        def naive(x: torch.Tensor) -> torch.Tensor:
            with torch.enable_grad():
                return model(x)

        def lean(x: torch.Tensor) -> Any:
            return learner.call_obj(serve, x, what="the function lean_forward returned")

        x = fresh_inputs(batch, shape).to(dev)
        want = expected_outputs(model, x, dev, chunk=batch)
        naive(x)   # warm-up: first-call allocations (cuBLAS workspace) are not a forward's peak
        lean(x)
        base = naive_peak(model, x, dev)
        del base.output
        mine = call_peak(lean, x, dev)
        problem = _lean_problem(mine.output, want, dev)
        details: dict[str, Any] = {"model": f"{LEAN_MODEL} {'x'.join(map(str, shape))}", "batch_size": batch,
                                   "naive_peak_bytes": base.bytes, "your_peak_bytes": mine.bytes,
                                   "operators_seen": mine.ops, "compute_layers": layers}
        if problem:
            grade.fail(problem, details=details)
            return
        if dev == "cpu" and mine.ops < layers:
            grade.fail(f"the grader's profiler saw {mine.ops} operators on the calling thread, fewer than the model's "
                       f"{layers} convolution and linear layers: run the forward on the calling thread, where its "
                       f"memory can be measured", details=details)
            return

        def fresh() -> tuple[torch.Tensor]:
            return (fresh_inputs(batch, shape).to(dev),)

        def right(out_naive: Any, out_lean: Any, args: tuple) -> str | None:
            return _lean_problem(out_lean, expected_outputs(model, args[0], dev, chunk=batch), dev)

        sync = (lambda: torch.cuda.synchronize(dev)) if dev == "cuda" else None
        res = paired_ratio(naive, lean, make_inputs=fresh, pairs=4 if grade.quick else 8, warmup=1,
                           max_attempts=2, sync=sync, benchmark=benchmark, threshold=MIN_SPEED, check=right)
    share = 100.0 * mine.bytes / base.bytes
    details.update({**res.details("naive", "lean"), "peak_share_pct": share, "speed_vs_naive_x": res.median})
    low, high = res.interval
    if high < MIN_SPEED:   # clearly slower: the whole confidence interval of the median is below the gate
        grade.fail(f"your lean server runs at {res.median:.2f}x the naive server's speed (interval {low:.2f}-{high:.2f}x; "
                   f"at least {MIN_SPEED}x needed): memory saved by running slower does not count (one call per "
                   f"batch, no tiny chunks)", value=share, details=details)
        return
    grade.record(share, details=details, noisy=False,
                 message=f"{LEAN_MODEL}, batch {batch}: your peak {mine.bytes / 1e6:.1f} MB, {share:.0f} % of the naive "
                         f"server's {base.bytes / 1e6:.1f} MB (float32, autograd on); outputs {_lean_tolerance(dev)}, "
                         f"speed {res.median:.2f}x the naive server's")
