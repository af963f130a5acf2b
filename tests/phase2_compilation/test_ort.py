"""Task 2.9: ONNX Runtime sessions: options read back, optimized graphs saved, timings per configuration."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from .conftest import IMAGE, make_tiny
from .impl import p2c

pytestmark = pytest.mark.phase2_task9


@pytest.mark.parametrize("level, enum", [("disable", "ORT_DISABLE_ALL"), ("basic", "ORT_ENABLE_BASIC"),
                                         ("extended", "ORT_ENABLE_EXTENDED"), ("all", "ORT_ENABLE_ALL")])
def test_make_session_sets_every_option(tmp_path, tiny_onnx, level, enum):
    saved = tmp_path / "out" / f"{level}.onnx"
    cfg = p2c.SessionConfig(optimization_level=level, intra_op_threads=2, inter_op_threads=3,
                            execution_mode="parallel", optimized_model_path=str(saved))
    s = p2c.make_session(tiny_onnx, cfg)
    assert isinstance(s, ort.InferenceSession)
    so = s.get_session_options()
    assert so.graph_optimization_level == getattr(ort.GraphOptimizationLevel, enum)
    assert (so.intra_op_num_threads, so.inter_op_num_threads) == (2, 3)
    assert so.execution_mode == ort.ExecutionMode.ORT_PARALLEL
    assert s.get_providers()[0] == "CPUExecutionProvider"
    assert saved.is_file() and len(onnx.load(str(saved)).graph.node) >= 1
    x = torch.randn(3, *IMAGE)
    with torch.inference_mode():
        want = make_tiny()(x).numpy()
    np.testing.assert_allclose(s.run(None, {"input": x.numpy()})[0], want, rtol=1e-4, atol=1e-5)


def test_make_session_defaults_and_unknown_providers(tiny_onnx):
    so = p2c.make_session(tiny_onnx).get_session_options()
    assert so.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert so.intra_op_num_threads == 1 and so.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
    with pytest.raises(ValueError, match="CPUExecutionProvider"):
        p2c.make_session(tiny_onnx, p2c.SessionConfig(providers=("NoSuchExecutionProvider",)))


def test_benchmark_sessions(tiny_onnx):
    configs = {lvl: p2c.SessionConfig(optimization_level=lvl) for lvl in ("disable", "extended", "all")}
    calls = []

    def make_input():
        calls.append(1)
        return np.random.default_rng(len(calls)).standard_normal((1, *IMAGE)).astype(np.float32)

    rows = p2c.benchmark_sessions(tiny_onnx, make_input, configs, warmup=2, iterations=5)
    assert [r.name for r in rows] == ["disable", "extended", "all"]
    assert len(calls) == 3                                   # once per configuration, outside the timing
    for r in rows:
        assert r.config.optimization_level == r.name
        assert 0 < r.p50_ms <= r.p90_ms and r.session_s > 0
    nodes = [r.nodes for r in rows]
    # extended fuses; "all" may add layout reorders (NCHWc) around a model this small
    assert all(isinstance(n, int) for n in nodes) and nodes[0] > nodes[1]
    with pytest.raises(ValueError):
        p2c.benchmark_sessions(tiny_onnx, make_input, configs, iterations=0)


def test_fastest_session(tmp_path, tiny_onnx):
    s = p2c.fastest_session(tiny_onnx, intra_op_threads=1, optimized_model_path=tmp_path / "fast.onnx")
    so = s.get_session_options()
    assert so.intra_op_num_threads == 1
    assert so.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL or so.inter_op_num_threads == 1
    assert s.get_providers()[0] == "CPUExecutionProvider"
    assert (tmp_path / "fast.onnx").is_file()
    x = torch.randn(2, *IMAGE)
    with torch.inference_mode():
        want = make_tiny()(x).numpy()
    np.testing.assert_allclose(s.run(None, {"input": x.numpy()})[0], want, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError):
        p2c.fastest_session(tiny_onnx, intra_op_threads=0)


@pytest.mark.parametrize("bad", [dict(optimization_level="max"), dict(intra_op_threads=0),
                                 dict(execution_mode="async"), dict(providers=())])
def test_session_config_is_validated(bad):
    with pytest.raises(ValueError):
        p2c.SessionConfig(**bad)
