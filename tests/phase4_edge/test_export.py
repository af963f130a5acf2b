"""Task 4.7: exports of the small digits CNN (fast) agree with the model in ONNX Runtime and ExecuTorch."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from phase4_production.edge.models import calibration_crops, small_classifier

from .impl import p4e

pytestmark = pytest.mark.phase4_task7


@pytest.fixture(scope="module")
def crops():
    return calibration_crops(48)


def test_onnx_export_agrees_and_int8_is_smaller(tmp_path, crops):
    import onnxruntime as ort

    model = small_classifier()
    fp32 = p4e.export_onnx(model, tmp_path / "a" / "fp32.onnx")
    sess = ort.InferenceSession(str(fp32), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["crops"]
    for n in (1, 5):
        x = crops[:n]
        with torch.inference_mode():
            want = model(torch.from_numpy(x)).numpy()
        assert np.abs(sess.run(None, {"crops": x})[0] - want).max() < 1e-4
    int8 = p4e.quantize_int8(fp32, tmp_path / "int8.onnx", crops)
    assert int8.stat().st_size < 0.35 * fp32.stat().st_size
    q = ort.InferenceSession(str(int8), providers=["CPUExecutionProvider"])
    with torch.inference_mode():
        want = model(torch.from_numpy(crops)).argmax(1).numpy()
    assert (q.run(None, {"crops": crops})[0].argmax(1) == want).mean() >= 0.95


def test_executorch_export_runs_in_its_runtime(tmp_path, crops):
    runtime = pytest.importorskip("executorch.runtime", reason="ExecuTorch is not installed (the `edge` extra)")
    model = small_classifier()
    path = p4e.export_executorch(model, tmp_path / "m.pte")
    method = runtime.Runtime.get().load_program(str(path)).load_method("forward")
    x = torch.from_numpy(crops[:4])
    with torch.inference_mode():
        assert torch.allclose(method.execute([x])[0], model(x), atol=1e-4)
    with pytest.raises(ValueError, match="calibration"):
        p4e.export_executorch(model, tmp_path / "q.pte", int8=True)
