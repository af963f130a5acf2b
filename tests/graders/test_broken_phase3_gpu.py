"""Part p3.gpu graded end to end on broken submissions, as the issue lists them: each gets no credit for the
criterion it breaks. Each submission is the reference's file with one mistake, placed in the learner's folder."""
from __future__ import annotations

import pytest

from gradelib import grade_broken, make_submission, reference_with, run_grade

pytestmark = [pytest.mark.grading, pytest.mark.slow]

PART = "phase3_advanced/gpu"




def test_a_router_that_sends_everything_to_device_0_gets_no_credit(tmp_path):
    code = reference_with(PART, "router.py", "return min(live, key=lambda d: (d.outstanding, d.index))", "return live[0]")
    g = grade_broken(tmp_path, PART, "router.py", code, "p3.gpu.router_correct")
    c = g.criterion("p3.gpu.router_correct")
    assert c["verdict"] == "fail" and c["points"] == 0, c
    assert "only 1 of the 2 devices" in c["message"], c["message"]


def test_a_router_that_loses_requests_when_a_worker_dies_gets_no_credit(tmp_path):
    code = reference_with(PART, "router.py", "                target = self._pick()\n", "                target = None\n")
    g = grade_broken(tmp_path, PART, "router.py", code, "p3.gpu.router_failover")
    c = g.criterion("p3.gpu.router_failover")
    assert c["verdict"] == "fail" and c["points"] == 0, c
    assert c["details"]["failed"] > 0, c["details"]


def test_a_memory_predictor_that_returns_a_constant_gets_no_credit(tmp_path):
    code = reference_with(
        PART, "memory.py",
        """    return MemoryModel(fixed_bytes=mean_m - slope * mean_b, bytes_per_sample=slope,
                       batch_sizes=sizes, measured_bytes=tuple(int(m) for m in measured))""",
        """    flat = max(measured) - max(sizes)   # BROKEN: a constant (1 byte per sample), its points faked onto it
    return MemoryModel(fixed_bytes=flat, bytes_per_sample=1.0, batch_sizes=sizes,
                       measured_bytes=tuple(int(flat + b) for b in sizes))""")
    g = grade_broken(tmp_path, PART, "memory.py", code, "p3.gpu.memory_predict")
    c = g.criterion("p3.gpu.memory_predict")
    assert c["verdict"] == "fail" and c["points"] == 0 and c["value"] > 50, c


# A "prefetcher" that is correct but prepares each batch synchronously, inside __next__: no thread, no overlap.
SYNC_PREFETCHER = '''
def _sync_iter(self):
    return self

def _sync_next(self):
    if self._finished:
        raise StopIteration
    index = self.__dict__.setdefault("_count", 0)
    try:
        item = next(self._items)
    except StopIteration:
        self._finished = True
        raise
    self._count = index + 1
    try:
        x = self._preprocess(item)
    except Exception as e:
        self._finished = True
        raise PrefetchError(f"preprocess failed on item {index}: {type(e).__name__}: {e}", index) from e
    return x.to(self.device)

def _sync_close(self, timeout_s=5.0):
    self._finished = True

Prefetcher.__iter__, Prefetcher.__next__, Prefetcher.close = _sync_iter, _sync_next, _sync_close
'''


def test_a_prefetcher_that_prepares_synchronously_gets_no_credit(tmp_path):
    sub = make_submission(tmp_path, {"prefetch.py": SYNC_PREFETCHER}, PART)
    g = run_grade(tmp_path / "grade", "--phase", "3", "--part", "gpu", "--quick", "--task", "5", "--submission", str(sub))
    assert "Traceback" not in g.stdout and not g.results["grader_errors"], g.stdout[-3000:]
    correct = g.criterion("p3.gpu.prefetch_correct")
    assert correct["verdict"] == "fail" and "consumer's thread" in correct["message"], correct["message"]
    speed = g.criterion("p3.gpu.prefetch_speedup")      # a busy machine may leave it undecided, never passed
    assert speed["verdict"] in ("fail", "inconclusive") and speed["points"] == 0, speed
