"""Task 2.16: OpenVINO beside ONNX Runtime on a small CNN: a fair one-thread FP32 compile, NNCF's INT8 model, and
both runtimes' kernel profiles."""
from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
import torch

from .impl import c

pytestmark = pytest.mark.phase2_task16

os.environ.setdefault("NNCF_CI", "1")
ov = pytest.importorskip("openvino", reason="OpenVINO is not installed (the vendor extra: pip install -e '.[vendor]')")
ort = pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory):
    """A small CNN (the Task 2.15 student at full resolution) as ONNX, batch axis dynamic."""
    model = c.make_student(16, pool=1, seed=3).eval()
    path = tmp_path_factory.mktemp("ov") / "small.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # the legacy exporter's deprecation notice
        torch.onnx.export(model, (torch.randn(1, 3, 32, 32),), str(path), input_names=["input"],
                          output_names=["logits"], opset_version=17, dynamo=False,
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    return path


def _ort(path, x):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x.numpy()})[0]


def test_compile_is_one_thread_fp32_and_agrees_with_onnx_runtime(onnx_file):
    compiled = c.compile_openvino(onnx_file, 1)
    assert int(compiled.get_property("INFERENCE_NUM_THREADS")) == 1
    assert compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name() == "f32"
    assert int(c.compile_openvino(onnx_file, 2).get_property("INFERENCE_NUM_THREADS")) == 2
    x = torch.randn(4, 3, 32, 32)
    got, want = c.run_openvino(compiled, x).numpy(), _ort(onnx_file, x)
    assert got.shape == want.shape == (4, 10)
    assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()
    with pytest.raises(ValueError):
        c.compile_openvino(onnx_file, 0)


def test_quantized_model_has_fake_quantize_nodes_and_stays_close(onnx_file):
    calib = torch.randn(16, 3, 32, 32)
    q = c.quantize_openvino(onnx_file, calib)
    assert isinstance(q, ov.Model)
    types = [op.get_type_name() for op in q.get_ops()]
    assert types.count("FakeQuantize") >= types.count("Convolution") + types.count("MatMul") > 0
    x = calib[:4]
    fp32 = c.run_openvino(c.compile_openvino(onnx_file, 1), x)
    int8 = c.run_openvino(c.compile_openvino(q, 1), x)
    assert int8.shape == fp32.shape
    assert float((int8 - fp32).abs().max()) < 0.25 * float(fp32.abs().max())


def test_openvino_profile_counts_every_executed_node_once_per_inference(onnx_file):
    compiled = c.compile_openvino(onnx_file, 1)
    x = torch.randn(1, 3, 32, 32)
    rows = c.kernel_profile(compiled, x, runs=3)
    assert all(isinstance(r, c.KernelTime) for r in rows)
    assert [r.ms for r in rows] == sorted((r.ms for r in rows), reverse=True)
    request = compiled.create_infer_request()
    request.infer({0: x.numpy()})
    executed = sum(p.status == ov.ProfilingInfo.Status.EXECUTED for p in request.get_profiling_info())
    assert sum(r.calls for r in rows) == executed
    assert any(r.node_type == "Convolution" for r in rows) and sum(r.ms for r in rows) > 0


def test_onnx_runtime_profile_reads_the_kernels_and_leaves_no_file(onnx_file, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rows = c.ort_kernel_profile(onnx_file, torch.randn(1, 3, 32, 32), threads=1, runs=3)
    assert any("Conv" in r.node_type for r in rows)
    assert all(r.exec_type == "CPUExecutionProvider" and r.ms >= 0 and r.calls >= 1 for r in rows)
    assert sum(r.ms for r in rows) > 0
    assert not list(tmp_path.iterdir()) and not list(onnx_file.parent.glob("*.json"))
