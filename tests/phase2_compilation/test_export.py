"""Task 2.7: export to ONNX with a dynamic batch, validate it, compare it with PyTorch."""
from __future__ import annotations

import copy

import numpy as np
import onnx
import pytest
import torch

from .conftest import IMAGE, make_tiny
from .impl import p2c

pytestmark = pytest.mark.phase2_task7


def _run(path, x: torch.Tensor) -> np.ndarray:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    s = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return s.run(None, {s.get_inputs()[0].name: x.numpy()})[0]


@pytest.mark.parametrize("dynamo", [True, False], ids=["torch.export", "legacy-tracer"])
def test_export_runs_every_batch_size(tmp_path, dynamo):
    model = make_tiny()
    path = p2c.export_onnx(model, torch.randn(1, *IMAGE), tmp_path / "sub" / "m.onnx",
                           p2c.ExportConfig(dynamo=dynamo, opset=18 if dynamo else 17))
    assert path == tmp_path / "sub" / "m.onnx" and path.is_file()
    onnx.checker.check_model(str(path), full_check=True)
    for bs in (1, 3, 17):
        x = torch.randn(bs, *IMAGE)
        with torch.inference_mode():
            want = model(x).numpy()
        got = _run(path, x)
        assert got.shape == (bs, 10)
        assert np.abs(got - want).max() < 1e-5


def test_export_names_and_a_fixed_batch(tmp_path):
    cfg = p2c.ExportConfig(dynamic_batch=False, input_name="pixels", output_name="scores")
    path = p2c.export_onnx(make_tiny(), torch.randn(4, *IMAGE), tmp_path / "fixed.onnx", cfg)
    info = p2c.check_onnx(path)
    assert info.inputs == {"pixels": [4, 3, 16, 16]} and info.outputs == {"scores": [4, 10]}


def test_export_puts_the_model_in_eval_mode(tmp_path):
    model = make_tiny().train()                           # a learner forgot eval(): the export must not
    path = p2c.export_onnx(model, torch.randn(2, *IMAGE), tmp_path / "m.onnx")
    x = torch.randn(5, *IMAGE)
    with torch.inference_mode():
        want = model.eval()(x).numpy()
    assert np.abs(_run(path, x) - want).max() < 1e-5


def test_check_onnx_describes_the_file(tiny_onnx):
    info = p2c.check_onnx(tiny_onnx)
    assert info.opset == 17
    assert info.inputs == {"input": ["batch", 3, 16, 16]}
    assert info.outputs == {"logits": ["batch", 10]}
    assert info.num_nodes == sum(info.op_counts.values())
    assert info.op_counts.get("Conv") == 2 and "BatchNormalization" not in info.op_counts  # folded by the exporter


def test_check_onnx_refuses_a_broken_or_missing_file(tmp_path, tiny_onnx):
    with pytest.raises(FileNotFoundError, match="nope.onnx"):
        p2c.check_onnx(tmp_path / "nope.onnx")
    model = onnx.load(str(tiny_onnx))
    model.graph.node[0].input[0] = "no_such_tensor"
    onnx.save(model, str(tmp_path / "broken.onnx"))
    with pytest.raises(onnx.checker.ValidationError):
        p2c.check_onnx(tmp_path / "broken.onnx")


def test_compare_finds_a_known_difference(tiny_onnx):
    model = make_tiny()
    shifted = copy.deepcopy(model)
    delta = torch.tensor([0.0, 0.3, -0.7, 0.1, 0.0, 0.0, 0.25, 0.0, 0.0, 0.05])
    with torch.no_grad():
        shifted.head.bias += delta
    x = torch.randn(37, *IMAGE)
    y = torch.randint(0, 10, (37,))
    r = p2c.compare_with_pytorch(shifted, tiny_onnx, x, y, batch_size=8)
    assert r.num_samples == 37
    assert r.max_abs_diff == pytest.approx(0.7, abs=1e-4)
    onnx_pred = torch.from_numpy(_run(tiny_onnx, x)).argmax(1)
    with torch.inference_mode():
        eager_pred = shifted(x).argmax(1)
    assert r.top1_agreement == pytest.approx(float((onnx_pred == eager_pred).float().mean()))
    assert r.accuracy_eager == pytest.approx(float((eager_pred == y).float().mean()))
    assert r.accuracy_onnx == pytest.approx(float((onnx_pred == y).float().mean()))
    same = p2c.compare_with_pytorch(model, tiny_onnx, x, batch_size=64)
    assert same.max_abs_diff < 1e-5 and same.top1_agreement == 1.0 and same.accuracy_eager is None


@pytest.mark.parametrize("n, batch_size", [(0, 8), (4, 0)])
def test_compare_refuses_no_images_and_a_batch_size_below_one(tiny_onnx, n, batch_size):
    with pytest.raises(ValueError):
        p2c.compare_with_pytorch(make_tiny(), tiny_onnx, torch.randn(n, *IMAGE), batch_size=batch_size)


@pytest.mark.parametrize("bad", [dict(opset=9), dict(input_name=""), dict(input_name="a", output_name="a")])
def test_export_config_is_validated(bad):
    with pytest.raises(ValueError):
        p2c.ExportConfig(**bad)
