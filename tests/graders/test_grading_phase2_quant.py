"""Phase 2 quantization graded end to end: the reference passes, stubs score 0 cleanly, cheats get no credit.

Each run grades one task (``--task N``, N = 1..6: the quantization half) in quick mode, as a user would.
"""
from __future__ import annotations

import textwrap

import pytest

from gradelib import ROOT, make_submission, run_grade

pytestmark = [pytest.mark.grading, pytest.mark.slow]
PHASE_DIR = "phase2_optimization"
TASKS = (1, 2, 3, 4, 5, 6)
TIMED = {"p2.q_dynamic_speedup", "p2.q_onnx_speedup_eager", "p2.q_onnx_speedup_ort", "p2.q_fp16_speedup"}
needs_reference = pytest.mark.skipif(not (ROOT / PHASE_DIR / "reference").is_dir(),
                                     reason="no reference solution in this copy (learner release)")


@needs_reference
@pytest.mark.parametrize("task", TASKS)
def test_reference_passes_quantization_task(tmp_path, task):
    g = run_grade(tmp_path / f"ref{task}", "--phase", "2", "--impl", "reference", "--quick", "--task", str(task))
    assert "Traceback" not in g.stdout
    assert g.verdicts and all(cid.startswith("p2.q_") for cid in g.verdicts)
    for cid, verdict in g.verdicts.items():
        allowed = {"pass", "skipped"} | ({"inconclusive"} if cid in TIMED else set())
        assert verdict in allowed, f"{cid}: {verdict}: {g.criterion(cid)['message']}"
        if verdict == "skipped":
            assert "NVIDIA GPU" in g.criterion(cid)["message"] or "BF16" in g.criterion(cid)["message"]
    assert g.code == (0 if "inconclusive" not in g.verdicts.values() else 1)


def test_untouched_stubs_score_zero_with_a_hint_each(tmp_path):
    g = run_grade(tmp_path / "stubs", "--phase", "2", "--quick")   # the whole phase: one process, fast
    assert g.code == 1, g.stdout[-2000:]
    assert "Traceback" not in g.stdout
    quant = [c for c in g.results["criteria"] if c["id"].startswith("p2.q_")]
    assert {c["task"] for c in quant} == set(TASKS)
    for c in quant:
        assert c["points"] == 0
        if c["verdict"] == "skipped":
            assert "NVIDIA GPU" in c["message"]
            continue
        assert c["verdict"] == "fail", c
        assert f"not implemented yet: Task 2.{c['task']}" in c["message"], c["message"]
        assert f"QUANTIZATION_GUIDE.md#task-2{c['task']}" in c["hint"]
    imported = [e for e in g.events() if e["event"] == "session_end"][-1]["modules"]
    assert imported and not any(".reference" in m for m in imported), imported


# A submission that cheats two ways. The first INT8 file it is asked for (the digits model) is the
# FP32 file under a new name; every later one (the speed model) is a real, fast INT8 graph whose
# weights are scrambled: INT8, small, fast, and wrong. The FX "INT8" model is the float model, and
# the dynamic "INT8" model is the float model too.
CHEAT_STATIC = textwrap.dedent('''
    _CALLS = []

    class TensorCalibrationReader(CalibrationDataReader):
        def __init__(self, input_name, batches, *, limit=None):
            self.feeds = [{input_name: np.asarray(b, dtype=np.float32)} for b in batches]

        def get_next(self):
            return self.feeds.pop(0) if self.feeds else None

    def quantize_static_onnx(fp32_onnx_path, int8_onnx_path, calibration_reader, config=None):
        import shutil
        import numpy as np
        import onnx
        from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
        _CALLS.append(1)
        if len(_CALLS) == 1:
            shutil.copy(fp32_onnx_path, int8_onnx_path)   # "INT8" that is FP32
            return int8_onnx_path
        quantize_static(str(fp32_onnx_path), str(int8_onnx_path), calibration_reader, quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        m = onnx.load(str(int8_onnx_path))
        rng = np.random.default_rng(0)
        for t in m.graph.initializer:                     # scramble every int8 weight
            if t.data_type == onnx.TensorProto.INT8 and len(t.dims) == 4:
                t.raw_data = rng.integers(-127, 128, size=int(np.prod(t.dims)), dtype=np.int8).tobytes()
        onnx.save(m, str(int8_onnx_path))
        return int8_onnx_path
    ''')
CHEAT_FX = textwrap.dedent('''
    def quantize_static_fx(model, example_input, calibration_batches, config=None):
        import copy
        return copy.deepcopy(model).eval()
    ''')
CHEAT_DYNAMIC = textwrap.dedent('''
    def torch_dynamic_int8(model):
        return model
    ''')


@needs_reference
def test_fp32_as_int8_and_fast_but_wrong_get_no_credit(tmp_path):
    sub = make_submission(tmp_path, {"quantization/static_onnx.py": CHEAT_STATIC,
                                     "quantization/static_fx.py": CHEAT_FX,
                                     "quantization/dynamic.py": CHEAT_DYNAMIC}, phase_dir=PHASE_DIR)
    g = run_grade(tmp_path / "cheat4", "--phase", "2", "--quick", "--task", "4", "--submission", str(sub))
    assert g.code == 1 and "Traceback" not in g.stdout, g.stdout[-3000:]
    v = {cid: g.criterion(cid) for cid in g.verdicts}
    for cid in ("p2.q_onnx_size", "p2.q_onnx_accuracy"):          # the FP32 file under an INT8 name
        assert v[cid]["verdict"] == "fail" and "not really INT8" in v[cid]["message"], v[cid]
        assert v[cid]["points"] == 0
    for cid in ("p2.q_onnx_speedup_eager", "p2.q_onnx_speedup_ort"):   # INT8 and fast, but wrong
        assert v[cid]["verdict"] == "fail" and "no speed credit" in v[cid]["message"], v[cid]
        assert v[cid]["points"] == 0 and v[cid]["details"]["sqnr_db"] < 20
    assert v["p2.q_fx_accuracy"]["verdict"] == "fail" and "not really INT8" in v["p2.q_fx_accuracy"]["message"]
    g = run_grade(tmp_path / "cheat3", "--phase", "2", "--quick", "--task", "3", "--submission", str(sub))
    c = g.criterion("p2.q_dynamic_speedup")
    assert c["verdict"] == "fail" and "not really INT8" in c["message"] and c["points"] == 0
