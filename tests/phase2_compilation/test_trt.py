"""Task 2.11: TensorRT. Configs, the batch reader and the FP16 / Q/DQ files everywhere; engines only with a GPU and
TensorRT (``test_trt_api.py`` runs the engine code against a fake of TensorRT 10 and 11 on any machine)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from .conftest import IMAGE, make_tiny, run_onnx
from .impl import needs_trt, p2c

pytestmark = pytest.mark.phase2_task11


@pytest.mark.parametrize("bad", [dict(precision="int4"), dict(min_batch=0), dict(min_batch=4, opt_batch=2),
                                 dict(opt_batch=64, max_batch=32), dict(workspace_mb=1)])
def test_trt_config_is_validated(bad):
    with pytest.raises(ValueError):
        p2c.TRTConfig(**bad)


def test_batch_reader_gives_full_batches_then_none():
    images = torch.randn(21, *IMAGE)
    r = p2c.TRTBatchReader(images, 8, input_name="input")
    batches = []
    while (feed := r.get_next()) is not None:
        batches.append(feed["input"])
    assert [b.shape for b in batches] == [(8, *IMAGE)] * 2 and batches[0].dtype == np.float32
    np.testing.assert_array_equal(batches[1], images[8:16].numpy())
    r.rewind()
    assert r.get_next() is not None
    assert p2c.TRTBatchReader(images, 4, max_batches=3).num_batches == 3
    with pytest.raises(ValueError):
        p2c.TRTBatchReader(images[:3], 8)


def test_fp16_onnx_is_float16_inside_and_float32_outside(tiny_onnx, tmp_path):
    import onnx

    out = p2c.fp16_onnx(tiny_onnx, tmp_path / "tiny_fp16.onnx")
    model = onnx.load(str(out))
    io = [v.type.tensor_type.elem_type for v in (*model.graph.input, *model.graph.output)]
    assert io == [onnx.TensorProto.FLOAT] * 2, "inputs and outputs stay float32 (keep_io_types=True)"
    kinds = [i.data_type for i in model.graph.initializer if i.dims]
    assert kinds and set(kinds) == {onnx.TensorProto.FLOAT16}, "every weight is float16"
    x = torch.randn(5, *IMAGE)
    with torch.inference_mode():
        want = make_tiny()(x).numpy()
    got = run_onnx(model, input=x.numpy())
    assert np.abs(got - want).max() / np.abs(want).max() < 3e-2


def test_qdq_onnx_is_what_tensorrt_builds_and_runs_in_onnx_runtime(tiny_onnx, tmp_path):
    import onnx

    from graders.phase2.compilation.qdq_rules import parse_problems, unquantized_layers

    torch.manual_seed(0)
    reader = p2c.TRTBatchReader(torch.randn(64, *IMAGE), 8)
    reader.get_next()                                           # qdq_onnx must rewind it first
    out = p2c.qdq_onnx(tiny_onnx, reader, tmp_path / "tiny_int8.onnx")
    model = onnx.load(str(out))
    assert [n.op_type for n in model.graph.node].count("QuantizeLinear") >= 3
    assert parse_problems(model) == [], "symmetric INT8 Q/DQ only (zero point 0), no INT32 bias DequantizeLinear"
    assert unquantized_layers(model) == [], "every Conv/Gemm weight comes through a DequantizeLinear"
    x = torch.randn(8, *IMAGE)
    with torch.inference_mode():
        want = make_tiny()(x).numpy()
    got = run_onnx(model, input=x.numpy())                      # the same file runs in ONNX Runtime
    assert np.abs(got - want).max() / np.abs(want).max() < 0.2


def test_tensorrt_available_says_why_not():
    ok, reason = p2c.tensorrt_available()
    assert isinstance(ok, bool) and reason
    if not torch.cuda.is_available():
        assert not ok


def test_the_module_imports_without_tensorrt():
    import sys

    assert "tensorrt" not in sys.modules or p2c.tensorrt_available()[0]


def _logits(runner, x: torch.Tensor) -> torch.Tensor:
    out = runner(x.cuda())
    torch.cuda.synchronize()
    return out.float().cpu()


@pytest.mark.gpu
@needs_trt
@pytest.mark.parametrize("precision, tol", [("fp32", 1e-4), ("fp16", 3e-2)])
def test_engine_round_trip(tmp_path, tiny_onnx, precision, tol):
    engine = p2c.build_engine(tiny_onnx, p2c.TRTConfig(precision=precision, min_batch=1, opt_batch=4, max_batch=8))
    assert isinstance(engine, bytes) and len(engine) > 1000
    (tmp_path / "e.plan").write_bytes(engine)
    for source in (engine, tmp_path / "e.plan"):
        runner = p2c.load_engine(source)
        assert runner.stream.cuda_stream != 0, "the engine runs on its own stream, not the legacy default one"
        for bs in (1, 5, 8):
            x = torch.randn(bs, *IMAGE)
            with torch.inference_mode():
                want = make_tiny()(x)
            got = _logits(runner, x)
            assert got.shape == (bs, 10)
            assert float((got - want).abs().max() / want.abs().max()) < tol


@pytest.mark.gpu
@needs_trt
def test_int8_engine_with_a_calibration_cache(tmp_path, tiny_onnx):
    torch.manual_seed(0)
    reader = p2c.TRTBatchReader(torch.randn(64, *IMAGE), 8)
    cache = tmp_path / "tiny_int8_qdq.onnx"
    cfg = p2c.TRTConfig(precision="int8", opt_batch=8, max_batch=8, calibration_cache=str(cache))
    engine = p2c.build_engine(tiny_onnx, cfg, reader)
    assert cache.is_file() and cache.stat().st_size > 0           # the Q/DQ file, reused by the next build
    x = torch.randn(8, *IMAGE)
    with torch.inference_mode():
        want = make_tiny()(x)
    got = _logits(p2c.load_engine(engine), x)
    assert float((got - want).abs().max() / want.abs().max()) < 0.2
    with pytest.raises(ValueError):
        p2c.build_engine(tiny_onnx, p2c.TRTConfig(precision="int8"))
