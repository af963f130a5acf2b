"""Task 2.9: the learner's ONNX Runtime sessions, inspected and timed by the grader."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ...checks import expect
from ...harness import paired_ratio, threads
from ...plugin import criterion
from .workloads import SPEED_THREADS, grader_session, rel_diff, resnet18_224, resnet18_224_onnx, run_session

#: Outputs of a session must match eager PyTorch within this (relative to the logits' scale).
GATE_REL = 1e-4
LEVELS = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED",
          "all": "ORT_ENABLE_ALL"}


def _is_session(obj, what: str):
    import onnxruntime as ort

    expect(isinstance(obj, ort.InferenceSession),
           f"{what} should return an onnxruntime.InferenceSession, got {type(obj).__name__}")
    return obj


def _output_gap(session, n: int = 2) -> float:
    """Worst relative difference from eager PyTorch on ``n`` fresh inputs."""
    model = resnet18_224()
    worst = 0.0
    for _ in range(n):
        x = torch.randn(1, 3, 224, 224)
        with torch.inference_mode():
            want = model(x)
        try:
            got = run_session(session, x)
        except Exception as e:  # noqa: BLE001
            expect(False, f"your session failed on a [1, 3, 224, 224] float32 input: {type(e).__name__}: {str(e)[:200]}")
        expect(tuple(got.shape) == tuple(want.shape), f"your session's output is {tuple(got.shape)}, expected "
                                                      f"{tuple(want.shape)}")
        worst = max(worst, rel_diff(got, want))
    return worst


def _saved_nodes(path: Path) -> int:
    import onnx

    return len(onnx.load(str(path), load_external_data=False).graph.node)


@criterion("p2.compilation.ort_levels")
def test_ort_levels(grade, learner, tmp_path):
    import onnxruntime as ort

    path = resnet18_224_onnx()
    rows, ok = {}, 0
    for level, enum_name in LEVELS.items():
        yours, mine = tmp_path / f"yours_{level}.onnx", tmp_path / f"grader_{level}.onnx"
        cfg = learner.call("SessionConfig", optimization_level=level, intra_op_threads=1,
                           optimized_model_path=str(yours))
        session = _is_session(learner.call("make_session", path, cfg), "make_session")
        so = session.get_session_options()
        grader_session(path, level=enum_name, optimized_path=str(mine))
        row = {"level_set": str(so.graph_optimization_level).split(".")[-1], "grader_nodes": _saved_nodes(mine),
               "your_nodes": _saved_nodes(yours) if yours.is_file() else None}
        row["rel_diff"] = _output_gap(session, n=1)
        row["ok"] = (so.graph_optimization_level == getattr(ort.GraphOptimizationLevel, enum_name)
                     and row["your_nodes"] == row["grader_nodes"] and row["rel_diff"] <= GATE_REL)
        ok += row["ok"]
        rows[level] = row
    wrong = [f"{lvl} ({r['level_set']}, {r['your_nodes']} nodes saved, grader {r['grader_nodes']})"
             for lvl, r in rows.items() if not r["ok"]]
    grade.record(100.0 * ok / len(LEVELS),
                 message=("nodes ONNX Runtime ran at each level: "
                          + ", ".join(f"{lvl} {r['grader_nodes']}" for lvl, r in rows.items())
                          + ("" if not wrong else f"; wrong: {', '.join(wrong)}")),
                 details={"levels": rows})


@criterion("p2.compilation.ort_speedup")
def test_ort_speedup(grade, learner, tmp_path, benchmark):
    import onnxruntime as ort

    path = resnet18_224_onnx()
    session = _is_session(learner.call("fastest_session", path, intra_op_threads=SPEED_THREADS,
                                       optimized_model_path=str(tmp_path / "yours_optimized.onnx")),
                          "fastest_session")
    so = session.get_session_options()
    providers = session.get_providers()
    expect(providers and providers[0] == "CPUExecutionProvider",
           f"the session runs on {providers}; this criterion compares CPU with CPU (CPUExecutionProvider first)")
    expect(so.intra_op_num_threads == SPEED_THREADS,
           f"intra_op_num_threads is {so.intra_op_num_threads}; set it to the intra_op_threads you were given "
           f"({SPEED_THREADS}), the threads PyTorch gets in this comparison")
    expect(so.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL or so.inter_op_num_threads == 1,
           "parallel execution with more than one inter-op thread uses more cores than PyTorch gets here")
    gap = _output_gap(session, n=3)
    if gap > GATE_REL:
        grade.fail(f"your session's outputs differ from eager FP32 by {gap:.2e} relative (more than {GATE_REL:g}): "
                   f"no speed credit for a session that computes something else (FP16, INT8, another model)",
                   details={"rel_diff": gap})
        return
    model = resnet18_224()
    name = session.get_inputs()[0].name

    def eager(x):
        with torch.inference_mode():
            return model(x)

    def yours(x):
        return session.run(None, {name: x.numpy()})

    def same_as_eager(want, got, inputs) -> str | None:  # the gate above, on every timed call
        expect(isinstance(got, (list, tuple)) and len(got) > 0,
               f"your session's run() returned {type(got).__name__}, not a list of outputs")
        out = torch.from_numpy(np.asarray(got[0])).float()
        if tuple(out.shape) != tuple(want.shape):
            return f"your session's output is {tuple(out.shape)}, expected {tuple(want.shape)}"
        err = rel_diff(out, want)
        return None if err <= GATE_REL else \
            f"your session's outputs differ from eager FP32 by {err:.2e} relative (more than {GATE_REL:g})"

    with threads(SPEED_THREADS):
        r = paired_ratio(eager, yours, threshold=grade.thresholds.pass_, make_inputs=lambda: (torch.randn(1, 3, 224, 224),),
                         pairs=16 if grade.quick else 40, warmup=3, benchmark=benchmark, check=same_as_eager)
    d = r.details("eager", "yours")
    grade.record(r.median, interval=r.interval, noise=r.noise,
                 message=f"eager FP32 {d['eager_median_ms']:.1f} ms vs your session {d['yours_median_ms']:.1f} ms "
                         f"(ResNet-18 224x224 batch 1, {SPEED_THREADS} thread each, {d['pairs']} interleaved pairs); "
                         f"outputs within {gap:.1e}",
                 details={**d, "rel_diff": gap, "threads": SPEED_THREADS})
