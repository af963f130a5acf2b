"""Part p2.quantization graded end to end on a cheating submission: FP32 passed off as INT8, and
fast-but-wrong INT8, get no credit."""
from __future__ import annotations

import textwrap

import pytest

from gradelib import ROOT, make_submission, run_grade

pytestmark = [pytest.mark.grading, pytest.mark.slow]
needs_reference = pytest.mark.skipif(not (ROOT / "phase2_optimization/quantization" / "reference").is_dir(),
                                     reason="no reference solution in this copy (learner release)")


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
    sub = make_submission(tmp_path, {"static_onnx.py": CHEAT_STATIC,
                                     "static_fx.py": CHEAT_FX,
                                     "dynamic.py": CHEAT_DYNAMIC}, "phase2_optimization/quantization")
    g = run_grade(tmp_path / "cheat4", "--phase", "2", "--quick", "--task", "4", "--submission", str(sub))
    assert g.code == 1 and "Traceback" not in g.stdout, g.stdout[-3000:]
    v = {cid: g.criterion(cid) for cid in g.verdicts}
    for cid in ("p2.quantization.onnx_size", "p2.quantization.onnx_accuracy"):          # the FP32 file under an INT8 name
        assert v[cid]["verdict"] == "fail" and "not really INT8" in v[cid]["message"], v[cid]
        assert v[cid]["points"] == 0
    for cid in ("p2.quantization.onnx_speedup_eager", "p2.quantization.onnx_speedup_ort"):   # INT8 and fast, but wrong
        assert v[cid]["verdict"] == "fail" and "no speed credit" in v[cid]["message"], v[cid]
        assert v[cid]["points"] == 0 and v[cid]["details"]["sqnr_db"] < 20
    fx = v["p2.quantization.fx_accuracy"]
    assert fx["verdict"] == "fail" and "not really INT8" in fx["message"]
    g = run_grade(tmp_path / "cheat3", "--phase", "2", "--quick", "--task", "3", "--submission", str(sub))
    c = g.criterion("p2.quantization.dynamic_speedup")
    assert c["verdict"] == "fail" and "not really INT8" in c["message"] and c["points"] == 0


# PyTorch's real dynamic INT8, wrapped so that only its first call computes: every later call returns zeros
# at once. It passes the check before timing and is ~70x "faster" while timed; outputs are checked then too.
RIGHT_ONCE_DYNAMIC = textwrap.dedent('''
    class _RightOnce(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner, self.calls = inner, 0

        def forward(self, x):
            self.calls += 1
            return self.inner(x) if self.calls == 1 else torch.zeros(x.shape[0], x.shape[1])

    def torch_dynamic_int8(model):
        q = torch.ao.quantization.quantize_dynamic(copy.deepcopy(model).eval(), {nn.Linear}, dtype=torch.qint8)
        return _RightOnce(q)
    ''')


def test_a_dynamic_int8_model_right_on_its_first_call_only_gets_no_speed_credit(tmp_path):
    sub = make_submission(tmp_path, {"dynamic.py": RIGHT_ONCE_DYNAMIC}, "phase2_optimization/quantization")
    g = run_grade(tmp_path / "once", "--phase", "2", "--part", "quantization", "--submission", str(sub),
                  "--criterion", "p2.quantization.dynamic_speedup", "--quick")
    assert g.code == 1 and "Traceback" not in g.stdout, g.stdout[-3000:]
    c = g.criterion("p2.quantization.dynamic_speedup")
    assert c["verdict"] == "fail" and c["points"] == 0, c
    assert "timed call" in c["message"] and "SQNR 0.0 dB < 25 dB" in c["message"], c["message"]
    assert "checked during timing too" in c["message"], c["message"]
