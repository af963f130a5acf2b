"""Task 2.4: static INT8 with ONNX Runtime (calibration reader, QDQ graph) and with PyTorch FX."""
from __future__ import annotations

import copy

import numpy as np
import onnxruntime as ort
import pytest
import torch

from .impl import q

pytestmark = pytest.mark.phase2_task4


def _sqnr(a, b):
    return float(10 * torch.log10((a.double() ** 2).sum() / ((a - b).double() ** 2).sum()))


def test_calibration_reader_protocol(images):
    from onnxruntime.quantization import CalibrationDataReader

    reader = q.TensorCalibrationReader("input", images.split(16), limit=2)
    assert isinstance(reader, CalibrationDataReader) and len(reader) == 2
    first = reader.get_next()
    assert set(first) == {"input"} and first["input"].dtype == np.float32 and first["input"].shape == (16, 3, 32, 32)
    assert reader.get_next() is not None and reader.get_next() is None and reader.get_next() is None
    reader.rewind()
    np.testing.assert_array_equal(reader.get_next()["input"], first["input"])


@pytest.fixture
def tiny_onnx(tiny_cnn, tmp_path):
    return q.export_fp32_onnx(tiny_cnn, tmp_path / "tiny.onnx", torch.randn(1, 3, 32, 32))


@pytest.mark.parametrize("fmt, per_channel", [("U8S8", True), ("S8S8", False), ("U8U8", True)])
def test_quantize_static_onnx_writes_a_real_int8_graph(tiny_cnn, tiny_onnx, images, tmp_path, fmt, per_channel):
    out = tmp_path / "sub" / "tiny_int8.onnx"
    config = q.StaticQuantConfig(per_channel=per_channel, int8_format=fmt, reduce_range=False)
    path = q.quantize_static_onnx(tiny_onnx, out, q.TensorCalibrationReader("input", images.split(16)), config)
    assert path == out and out.is_file()
    assert not list(out.parent.glob("*preprocessed*"))                  # the temporary file is gone
    summary = q.onnx_quant_summary(out)
    assert summary["quantized_fraction"] == 1.0 and summary["ops"].get("DequantizeLinear", 0) > 0
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    x = torch.randn(4, 3, 32, 32)
    got = torch.from_numpy(session.run(None, {"input": x.numpy()})[0])
    with torch.inference_mode():
        assert _sqnr(tiny_cnn(x), got) > 20


def test_qoperator_format(tiny_onnx, images, tmp_path):
    config = q.StaticQuantConfig(quant_format="QOperator", reduce_range=False)
    out = q.quantize_static_onnx(tiny_onnx, tmp_path / "qop.onnx", q.TensorCalibrationReader("input", images.split(16)),
                                 config)
    assert q.onnx_quant_summary(out)["ops"].get("QLinearConv", 0) == 2


@pytest.mark.parametrize("bad", [dict(int8_format="U8S16"), dict(quant_format="QInt"), dict(calibrate_method="max"),
                                 dict(percentile=0), dict(reduce_range="auto")])
def test_static_config_validates(bad):
    with pytest.raises(ValueError):
        q.StaticQuantConfig(**bad)


def test_reduce_range_follows_the_cpu():
    assert q.resolve_reduce_range(True) is True and q.resolve_reduce_range(False) is False
    assert q.resolve_reduce_range(None) is (not q.cpu_has_int8_dot_product())


@pytest.mark.parametrize("observer", ["minmax", "moving_average", "percentile", "mse"])
def test_fx_static_int8_with_each_observer(tiny_cnn, images, observer):
    model = copy.deepcopy(tiny_cnn)
    qm = q.quantize_static_fx(model, images[:1], list(images.split(16)), q.FxQuantConfig(observer=observer))
    assert q.quantized_module_count(qm) >= 3                          # two convs and the linear
    assert q.state_dict_bytes(qm) < q.state_dict_bytes(tiny_cnn)
    x = torch.randn(8, 3, 32, 32)
    with torch.inference_mode():
        assert _sqnr(tiny_cnn(x), qm(x)) > 15
    for a, b in zip(model.state_dict().values(), tiny_cnn.state_dict().values()):
        assert torch.equal(a, b)                                       # the float model is left unchanged


def test_fx_config_validates():
    with pytest.raises(ValueError):
        q.FxQuantConfig(observer="kl")
    with pytest.raises(ValueError):
        q.FxQuantConfig(backend="tpu")
