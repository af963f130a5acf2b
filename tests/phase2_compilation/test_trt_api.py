"""Task 2.11 against a fake of TensorRT 10.x and 11.x (``fake_tensorrt.py``): every call the engine code makes,
checked on a machine without a GPU.

The fake has the members each real version has, so a call to something TensorRT 11 removed (the FP16/INT8
builder flags, the INT8 calibrators) fails here as it would on a GPU box. It also runs the engines it
builds (ONNX Runtime on host memory), so the outputs, the stream the work goes to, and the shape checks are
tested end to end. On a GPU with TensorRT, ``test_trt.py``'s ``gpu`` tests run the real thing.
"""
from __future__ import annotations

import importlib
import sys

import pytest
import torch

from .conftest import IMAGE, make_tiny
from .fake_tensorrt import FakeStream, fake_tensorrt
from .impl import p2c

pytestmark = pytest.mark.phase2_task11

#: Relative tolerance per precision: what the fake's ONNX Runtime run of the engine's file reaches.
TOL = {"fp32": 1e-4, "fp16": 3e-2, "int8": 0.2}


@pytest.fixture
def engine_module():
    """The ``trt_engine`` module of the implementation under test (reference here, starter in the learner copy)."""
    return importlib.import_module(p2c.__name__ + ".trt_engine")


@pytest.fixture(params=[10, 11], ids=["trt10", "trt11"])
def trt(request, monkeypatch, engine_module):
    """A fake ``tensorrt`` of one major version in ``sys.modules``, and CPU stand-ins for the CUDA streams."""
    fake = fake_tensorrt(request.param)
    fake.stream_log = []
    fake.caller = FakeStream(0, fake.stream_log)            # torch's current stream: the legacy default one
    monkeypatch.setitem(sys.modules, "tensorrt", fake)
    monkeypatch.setattr(engine_module, "_LOGGER", None, raising=False)
    monkeypatch.setattr(engine_module, "_caller_stream", lambda device: fake.caller)
    monkeypatch.setattr(engine_module, "_new_stream", lambda: FakeStream(7, fake.stream_log))
    return fake


def _calibration(n: int = 64, batch: int = 8):
    g = torch.Generator().manual_seed(1)
    return p2c.TRTBatchReader(torch.randn(n, *IMAGE, generator=g), batch)


def _build(tiny_onnx, precision: str, **cfg):
    reader = _calibration() if precision == "int8" else None
    config = p2c.TRTConfig(precision=precision, **{"min_batch": 1, "opt_batch": 4, "max_batch": 8, **cfg})
    return p2c.build_engine(tiny_onnx, config, reader)


def _rel(got: torch.Tensor, want: torch.Tensor) -> float:
    return float((got.float() - want).abs().max() / want.abs().max())


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_engines_build_load_and_run_on_both_versions(trt, tiny_onnx, tmp_path, precision):
    engine = _build(tiny_onnx, precision)
    assert isinstance(engine, bytes)
    (tmp_path / "e.plan").write_bytes(engine)
    runner = p2c.load_engine(tmp_path / "e.plan", stream=FakeStream(7, trt.stream_log))
    header = runner.engine.header
    assert header["strongly_typed"], "the network must be created with NetworkDefinitionCreationFlag.STRONGLY_TYPED"
    assert header["legacy_precision_flags"] == []
    assert header["tf32"] == (precision != "fp32"), "FP32 engines clear BuilderFlag.TF32 (and only they need to)"
    model = make_tiny()
    for bs in (1, 5, 8):
        x = torch.randn(bs, *IMAGE)
        with torch.inference_mode():
            want = model(x)
        got = runner(x)
        assert tuple(got.shape) == (bs, 10) and got.dtype == torch.float32
        assert _rel(got, want) < TOL[precision], f"{precision} batch {bs}: {_rel(got, want):.2e}"
    # The precision is in the file TensorRT parsed: FP16 tensors, or symmetric INT8 Q/DQ nodes.
    import onnx

    graph = onnx.load_from_string(runner.engine.onnx).graph
    kinds = {i.data_type for i in graph.initializer}
    ops = {n.op_type for n in graph.node}
    assert (onnx.TensorProto.FLOAT16 in kinds) == (precision == "fp16")
    assert ("QuantizeLinear" in ops) == (precision == "int8")


def test_work_goes_to_the_runner_s_own_stream_in_order(trt, tiny_onnx):
    runner = p2c.load_engine(_build(tiny_onnx, "fp32"))          # the runner makes its own stream
    assert runner.stream.cuda_stream != 0
    trt.stream_log.clear()
    runner(torch.randn(3, *IMAGE))
    assert trt.launches == [(7, 3)], "execute_async_v3 must be given the runner's stream, never the default (0)"
    assert trt.stream_log == [("wait", 7, 0), ("wait", 0, 7)], (
        "the runner's stream waits for the caller's work before the launch, and the caller's stream waits for "
        "the engine after it (so the caller can use the output without a synchronize in between)")
    assert not [m for level, m in trt.log if "default stream" in m]


def test_a_batch_outside_the_profile_is_refused(trt, tiny_onnx):
    runner = p2c.load_engine(_build(tiny_onnx, "fp32", max_batch=4), stream=FakeStream(7, trt.stream_log))
    runner(torch.randn(4, *IMAGE))
    with pytest.raises(ValueError):
        runner(torch.randn(5, *IMAGE))                          # set_input_shape returned False
    assert len(trt.launches) == 1


def test_int8_writes_and_reuses_its_qdq_file(trt, tiny_onnx, tmp_path):
    qdq = tmp_path / "cache" / "tiny_int8_qdq.onnx"
    first = _build(tiny_onnx, "int8", calibration_cache=str(qdq))
    assert qdq.is_file(), "config.calibration_cache names the Q/DQ file: build_engine writes it there"
    stamp = qdq.stat().st_mtime_ns
    config = p2c.TRTConfig(precision="int8", min_batch=1, opt_batch=4, max_batch=8, calibration_cache=str(qdq))
    again = p2c.build_engine(tiny_onnx, config)                 # no reader: the file is reused
    assert qdq.stat().st_mtime_ns == stamp and again == first
    with pytest.raises(ValueError):
        p2c.build_engine(tiny_onnx, p2c.TRTConfig(precision="int8"))


def test_an_engine_of_another_version_is_refused(monkeypatch, tiny_onnx, engine_module):
    monkeypatch.setattr(engine_module, "_LOGGER", None, raising=False)
    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt(10))
    engine = _build(tiny_onnx, "fp32")
    monkeypatch.setattr(engine_module, "_LOGGER", None, raising=False)
    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt(11))
    with pytest.raises(RuntimeError):
        p2c.load_engine(engine, stream=FakeStream(7, []))


def test_the_fake_refuses_what_tensorrt_11_removed(tiny_onnx, tmp_path):
    """The fake is only useful if it fails where TensorRT 11 fails: the 10.x implicit-precision calls."""
    old, new = fake_tensorrt(10), fake_tensorrt(11)
    for trt in (old, new):
        cfg = trt.Builder(trt.Logger()).create_builder_config()
        if trt is old:
            cfg.set_flag(trt.BuilderFlag.FP16)
            cfg.int8_calibrator = trt.IInt8EntropyCalibrator2()
            cfg.set_calibration_profile(None)
            continue
        for removed in ("FP16", "INT8", "BF16", "FP8", "OBEY_PRECISION_CONSTRAINTS", "DIRECT_IO"):
            with pytest.raises(AttributeError):
                getattr(trt.BuilderFlag, removed)
        with pytest.raises(AttributeError):
            cfg.int8_calibrator = object()
        with pytest.raises(AttributeError):
            cfg.set_calibration_profile(None)
        assert not hasattr(trt, "IInt8EntropyCalibrator2")
        assert not hasattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH")
        assert not hasattr(trt.Builder, "platform_has_fast_fp16")
        assert trt.BuilderFlag.TF32 is not None and trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED is not None
    # And it refuses a Q/DQ file TensorRT cannot build: ONNX Runtime's default asymmetric UINT8 activations.
    from onnxruntime.quantization import QuantFormat, quantize_static

    asym = tmp_path / "asym.onnx"
    quantize_static(str(tiny_onnx), str(asym), _calibration(), quant_format=QuantFormat.QDQ)
    network = new.Builder(new.Logger()).create_network(0)
    parser = new.OnnxParser(network, new.Logger())
    assert not parser.parse_from_file(str(asym))
    errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
    assert any("symmetric INT8" in e for e in errors) and any("INT32 DequantizeLinear" in e for e in errors)
