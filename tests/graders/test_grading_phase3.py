"""Phase 3's grader end to end: the reference passes, stubs score 0 cleanly, and a batcher that is
slow (one request per call) or fast but wrong gets no throughput credit."""
from __future__ import annotations

import json
import textwrap

import pytest

from gradelib import ROOT, make_submission, run_grade

pytestmark = [pytest.mark.grading, pytest.mark.slow]
PHASE_DIR = "phase3_advanced"
#: Criteria whose verdict rests on a timing that can be too noisy to decide on a shared machine.
TIMED = {"p3.batching_speedup", "p3.latency_bound", "p3.pool_throughput"}
needs_reference = pytest.mark.skipif(not (ROOT / PHASE_DIR / "reference").is_dir(),
                                     reason="no reference solution in this copy (learner release)")


@needs_reference
def test_reference_passes_phase3(tmp_path):
    g = run_grade(tmp_path / "ref", "--phase", "3", "--impl", "reference", "--quick")
    assert "Traceback" not in g.stdout
    for cid, verdict in g.verdicts.items():
        allowed = {"pass", "skipped"} | ({"inconclusive"} if cid in TIMED else set())
        assert verdict in allowed, f"{cid}: {verdict}: {g.criterion(cid)['message']}"
    assert len(g.verdicts) == 10
    assert g.code == (0 if "inconclusive" not in g.verdicts.values() else 1)
    bench = json.loads((g.out / "benchmark.json").read_text())
    assert {b["name"] for b in bench["benchmarks"]} >= {"test_batching_speedup", "test_latency_bound"}
    imported = [e for e in g.events() if e["event"] == "session_end"][-1]["modules"]
    assert "phase3_advanced.reference" in imported


def test_untouched_stubs_score_zero_with_a_hint_each(tmp_path):
    g = run_grade(tmp_path / "stubs", "--phase", "3", "--quick")
    assert g.code == 1, g.stdout[-2000:]
    assert "Traceback" not in g.stdout
    assert g.results["points"] == 0
    for c in g.results["criteria"]:
        if c["verdict"] == "skipped":
            assert "NVIDIA GPU" in c["message"]
            continue
        assert c["verdict"] == "fail", c
        assert "not implemented yet: Task 3." in c["message"], c["message"]
        assert "DYNAMIC_BATCHING_GUIDE.md#task-3" in c["hint"]
    imported = [e for e in g.events() if e["event"] == "session_end"][-1]["modules"]
    assert imported and not any(".reference" in m for m in imported), imported


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
    sub = make_submission(tmp_path, {"batcher.py": ONE_BY_ONE}, phase_dir=PHASE_DIR)
    g = run_grade(tmp_path / "one", "--phase", "3", "--quick", "--task", "1", "--submission", str(sub))
    assert "Traceback" not in g.stdout and g.code == 1, g.stdout[-2000:]
    v = g.verdicts
    assert v["p3.correct_under_load"] == "pass"           # correct, just not batched
    speed = g.criterion("p3.batching_speedup")
    assert speed["verdict"] == "fail" and speed["points"] == 0, speed
    assert speed["value"] < 1.5 and speed["details"]["mean_batch_size"] == 1.0


def test_a_fast_but_wrong_batcher_gets_no_credit(tmp_path):
    sub = make_submission(tmp_path, {"batcher.py": WRONG_ORDER}, phase_dir=PHASE_DIR)
    g = run_grade(tmp_path / "wrong", "--phase", "3", "--quick", "--task", "1", "--submission", str(sub))
    assert "Traceback" not in g.stdout and g.code == 1, g.stdout[-2000:]
    assert g.results["points"] == 0
    correct = g.criterion("p3.correct_under_load")
    assert correct["verdict"] == "fail" and "another request's or a wrong output" in correct["message"]
    speed = g.criterion("p3.batching_speedup")
    assert speed["verdict"] == "fail" and "no speed credit" in speed["message"], speed
    assert speed["details"]["wrong_outputs"] > 0
    assert g.verdicts["p3.latency_bound"] == "fail"
