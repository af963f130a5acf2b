"""The Phase 2 compilation grader (tasks 2.7-2.11) end to end: the reference passes, stubs fail cleanly,
and a fast-but-wrong or recompiling submission earns nothing for it.

Each run grades one task (``--task N``) so these tests do not depend on the quantization half.
"""
from __future__ import annotations

import json
import textwrap

import pytest

from gradelib import ROOT, make_submission, run_grade

pytestmark = [pytest.mark.grading, pytest.mark.slow]
PHASE_DIR = "phase2_optimization"
#: Timed criteria: a noisy machine may leave them inconclusive (never a silent fail).
TIMED = {"p2.c_ort_speedup", "p2.c_compile_speedup_cpu", "p2.c_compile_report"}
needs_reference = pytest.mark.skipif(not (ROOT / PHASE_DIR / "reference").is_dir(),
                                     reason="no reference solution in this copy (learner release)")


def _grade(tmp_path, task: int, *extra: str):
    g = run_grade(tmp_path / f"task{task}", "--phase", "2", "--quick", "--task", str(task), *extra)
    assert "Traceback" not in g.stdout, g.stdout[-3000:]
    assert not g.results["grader_errors"], g.results["grader_errors"]
    return g


def _exit_code_ok(g) -> bool:
    """Exit 0 when every required criterion passed; 1 when something stayed inconclusive."""
    return g.code == (0 if "inconclusive" not in g.verdicts.values() else 1)


@needs_reference
@pytest.mark.parametrize("task", [7, 8, 9, 10])
def test_reference_passes(tmp_path, task):
    g = _grade(tmp_path, task, "--impl", "reference")
    assert g.verdicts and all(c.startswith("p2.c_") for c in g.verdicts)
    for cid, verdict in g.verdicts.items():
        allowed = {"pass", "skipped"} | ({"inconclusive"} if cid in TIMED else set())
        assert verdict in allowed, f"{cid}: {verdict}: {g.criterion(cid)['message']}"
        if verdict == "skipped":
            assert "NVIDIA GPU" in g.criterion(cid)["message"]
    assert _exit_code_ok(g), g.stdout[-2000:]
    if task in (9, 10):                             # timed criteria went through pytest-benchmark
        bench = json.loads((g.out / "benchmark.json").read_text())
        assert len(bench["benchmarks"]) >= 1


@pytest.mark.parametrize("task", [7, 8, 10])  # 9: below, with a patched submission; 11 only skips on a CPU
def test_untouched_stubs_score_zero_with_a_hint_each(tmp_path, task):
    g = _grade(tmp_path, task)
    assert g.results["points"] == 0
    for c in g.results["criteria"]:
        if c["verdict"] == "skipped":
            assert "NVIDIA GPU" in c["message"] or "tensorrt" in c["message"]
            continue
        assert c["verdict"] == "fail", c
        assert f"not implemented yet: Task 2.{task}" in c["message"]
        assert "COMPILATION_GUIDE.md#task-2" in c["hint"]
    assert g.code == 1
    imported = [e for e in g.events() if e["event"] == "session_end"][-1]["modules"]
    assert imported and not any(".reference" in m for m in imported), imported


FAST_BUT_WRONG = textwrap.dedent('''
    def fastest_session(onnx_path, *, intra_op_threads=1, optimized_model_path=None):
        """Fast but wrong: average-pool the image and apply a random linear layer (no ResNet at all)."""
        import numpy as np
        import onnxruntime as ort
        from onnx import TensorProto, helper, numpy_helper

        w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((1000, 3)).astype(np.float32), "w")
        nodes = [helper.make_node("GlobalAveragePool", ["input"], ["p"]), helper.make_node("Flatten", ["p"], ["f"]),
                 helper.make_node("Gemm", ["f", "w"], ["logits"], transB=1)]
        graph = helper.make_graph(
            nodes, "fast", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 224, 224])],
            [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 1000])], [w])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        so = ort.SessionOptions()
        so.intra_op_num_threads, so.inter_op_num_threads = intra_op_threads, 1
        return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    ''')


def test_fast_but_wrong_session_gets_no_speed_credit(tmp_path):
    sub = make_submission(tmp_path, {"compilation/ort_sessions.py": FAST_BUT_WRONG}, phase_dir=PHASE_DIR)
    g = _grade(tmp_path, 9, "--submission", str(sub))
    speed = g.criterion("p2.c_ort_speedup")
    assert speed["verdict"] == "fail" and speed["points"] == 0
    assert "no speed credit" in speed["message"]
    levels = g.criterion("p2.c_ort_levels")                 # make_session is still the stub
    assert levels["verdict"] == "fail" and "not implemented yet: Task 2.9" in levels["message"]


ONE_GRAPH_PER_SHAPE = textwrap.dedent('''
    def compile_and_warm_up(model, make_input, batch_sizes, *, config=None, calls_per_size=3):
        """Static shapes: one graph per batch size (the cheap "eager" backend keeps this test fast)."""
        import time

        import torch

        compiled = torch.compile(model.eval(), backend="eager", dynamic=False)
        before, warm = graphs_compiled(), {}
        for bs in batch_sizes:
            x = make_input(bs)
            t0 = time.perf_counter()
            with torch.inference_mode():
                compiled(x)
            warm[bs] = time.perf_counter() - t0
        return CompileResult(compiled, sum(warm.values()), warm, graphs_compiled() - before)
    ''')


def test_one_graph_per_shape_fails_the_recompilation_criterion(tmp_path):
    sub = make_submission(tmp_path, {"compilation/torch_compile.py": ONE_GRAPH_PER_SHAPE}, phase_dir=PHASE_DIR)
    g = _grade(tmp_path, 10, "--submission", str(sub))
    rec = g.criterion("p2.c_compile_recompiles")
    assert rec["verdict"] == "fail" and "one graph per shape" in rec["message"], rec["message"]
    assert g.verdicts["p2.c_compile_correct"] == "pass"     # right answers, just recompiled
    assert "not implemented yet: Task 2.10" in g.criterion("p2.c_compile_speedup_cpu")["message"]
