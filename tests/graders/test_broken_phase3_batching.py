"""Part p3.batching graded end to end on broken batchers: one that runs requests one by one, or is
fast but hands out the wrong rows, gets no throughput credit; one that waits for full batches misses
the latency bound, machine stalls or not."""
from __future__ import annotations

import textwrap

import pytest

from gradelib import make_submission, run_grade

pytestmark = [pytest.mark.grading, pytest.mark.slow]


# A complete, correct batcher, except that every model call gets exactly one request.
ONE_BY_ONE = textwrap.dedent('''
    def _submit(self, x):
        request = _Request(x=x, future=Future(), enqueued_ns=time.perf_counter_ns())
        with self._cond:
            if not self._accepting:
                raise BatcherClosed("closed")
            self._queue.append(request)
            self._cond.notify()
        return request.future

    def _next_batch(self):
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait()
                if not self._queue:
                    return None
                taken = [self._queue.popleft() for _ in range(min(len(self._queue), self._take))]
            batch = [r for r in taken if r.future.set_running_or_notify_cancel()]
            if batch:
                return batch

    def _run_batch(self, batch):
        try:
            out = self._call_model(torch.stack([r.x for r in batch]))
        except Exception as e:
            for r in batch:
                _fail(r.future, ModelError(str(e)))
            return
        rows = list(out.unbind(0))
        for r, row in zip(batch, rows[::-1] if self._reverse else rows):
            _resolve(r.future, row)

    def _close(self, *, drain=True, timeout_s=10.0):
        with self._cond:
            self._accepting, self._closing = False, True
            self._cond.notify_all()
        if self._worker is not None:
            self._worker.join(timeout_s)

    DynamicBatcher.submit, DynamicBatcher._next_batch = _submit, _next_batch
    DynamicBatcher._run_batch, DynamicBatcher.close = _run_batch, _close
    DynamicBatcher._take, DynamicBatcher._reverse = 1, False
    ''')
# Batches without waiting (fast), but hands each request another request's row.
WRONG_ORDER = ONE_BY_ONE.replace("DynamicBatcher._take, DynamicBatcher._reverse = 1, False",
                                 "DynamicBatcher._take, DynamicBatcher._reverse = 16, True")


def test_a_one_by_one_batcher_gets_no_throughput_credit(tmp_path):
    sub = make_submission(tmp_path, {"batcher.py": ONE_BY_ONE}, "phase3_advanced/batching")
    g = run_grade(tmp_path / "one", "--phase", "3", "--quick", "--task", "1", "--submission", str(sub))
    assert "Traceback" not in g.stdout and g.code == 1, g.stdout[-2000:]
    v = g.verdicts
    assert v["p3.batching.correct_under_load"] == "pass"           # correct, just not batched
    speed = g.criterion("p3.batching.speedup")
    assert speed["verdict"] == "fail" and speed["points"] == 0, speed
    assert speed["value"] < 1.5 and speed["details"]["mean_batch_size"] == 1.0


def test_a_fast_but_wrong_batcher_gets_no_credit(tmp_path):
    sub = make_submission(tmp_path, {"batcher.py": WRONG_ORDER}, "phase3_advanced/batching")
    g = run_grade(tmp_path / "wrong", "--phase", "3", "--quick", "--task", "1", "--submission", str(sub))
    assert "Traceback" not in g.stdout and g.code == 1, g.stdout[-2000:]
    assert g.results["points"] == 0
    correct = g.criterion("p3.batching.correct_under_load")
    assert correct["verdict"] == "fail" and "another request's or a wrong output" in correct["message"]
    speed = g.criterion("p3.batching.speedup")
    assert speed["verdict"] == "fail" and "no speed credit" in speed["message"], speed
    assert speed["details"]["wrong_outputs"] > 0
    assert g.verdicts["p3.batching.latency_bound"] == "fail"


# Correct and batched, but it waits for a full batch (up to 150 ms), not for max_queue_delay_ms: at a light
# load every request waits for 15 others. The machine-stall canary must not excuse it.
_WAIT = """
            while not self._queue and not self._closing:
                self._cond.wait()
"""
FULL_BATCH_WAITER = ONE_BY_ONE.replace(_WAIT, _WAIT + """\
            give_up = time.perf_counter_ns() + 150_000_000
            while (len(self._queue) < self.config.max_batch_size and not self._closing
                   and time.perf_counter_ns() < give_up):
                self._cond.wait(0.005)
""").replace("DynamicBatcher._take, DynamicBatcher._reverse = 1, False",
             "DynamicBatcher._take, DynamicBatcher._reverse = 16, False")


def test_a_batcher_that_waits_for_a_full_batch_misses_the_latency_bound(tmp_path):
    assert _WAIT in ONE_BY_ONE and "give_up" in FULL_BATCH_WAITER
    sub = make_submission(tmp_path, {"batcher.py": FULL_BATCH_WAITER}, "phase3_advanced/batching")
    g = run_grade(tmp_path / "full", "--phase", "3", "--quick", "--task", "1", "--submission", str(sub))
    assert "Traceback" not in g.stdout, g.stdout[-2000:]
    assert g.verdicts["p3.batching.correct_under_load"] == "pass"
    late = g.criterion("p3.batching.latency_bound")
    assert late["verdict"] == "fail" and late["points"] == 0, late["message"]
    assert late["value"] > 150, late["message"]
    assert "canary" in late["message"] or "no machine stall" in late["message"], late["message"]
