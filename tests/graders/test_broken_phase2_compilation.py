"""Part p2.compilation graded end to end on broken submissions: a fast-but-wrong or recompiling
submission earns nothing for it. Each run grades one task (``--task N``)."""
from __future__ import annotations

import textwrap

import pytest

from gradelib import make_submission, run_grade

pytestmark = [pytest.mark.grading, pytest.mark.slow]


def _grade(tmp_path, task: int, *extra: str):
    g = run_grade(tmp_path / f"task{task}", "--phase", "2", "--quick", "--task", str(task), *extra)
    assert "Traceback" not in g.stdout, g.stdout[-3000:]
    assert not g.results["grader_errors"], g.results["grader_errors"]
    return g


FAST_BUT_WRONG = textwrap.dedent('''
    def fastest_session(onnx_path, *, intra_op_threads=1, optimized_model_path=None):
        """Fast but wrong: average-pool the image and apply a random linear layer (no ResNet at all)."""
        import numpy as np
        import onnxruntime as ort
        from onnx import TensorProto, helper, numpy_helper

        w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((1000, 3)).astype(np.float32), "w")
        nodes = [helper.make_node("GlobalAveragePool", ["input"], ["p"]), helper.make_node("Flatten", ["p"], ["f"]),
                 helper.make_node("Gemm", ["f", "w"], ["logits"], transB=1)]
        graph = helper.make_graph(
            nodes, "fast", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 224, 224])],
            [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 1000])], [w])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        so = ort.SessionOptions()
        so.intra_op_num_threads, so.inter_op_num_threads = intra_op_threads, 1
        return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    ''')


def test_fast_but_wrong_session_gets_no_speed_credit(tmp_path):
    sub = make_submission(tmp_path, {"ort_sessions.py": FAST_BUT_WRONG}, "phase2_optimization/compilation")
    g = _grade(tmp_path, 9, "--submission", str(sub))
    speed = g.criterion("p2.compilation.ort_speedup")
    assert speed["verdict"] == "fail" and speed["points"] == 0
    assert "no speed credit" in speed["message"]
    levels = g.criterion("p2.compilation.ort_levels")                 # make_session is still the stub
    assert levels["verdict"] == "fail" and "not implemented yet: Task 2.9" in levels["message"]


ONE_GRAPH_PER_SHAPE = textwrap.dedent('''
    def compile_and_warm_up(model, make_input, batch_sizes, *, config=None, calls_per_size=3):
        """Static shapes: one graph per batch size (the cheap "eager" backend keeps this test fast)."""
        import time

        import torch

        compiled = torch.compile(model.eval(), backend="eager", dynamic=False)
        before, warm = graphs_compiled(), {}
        for bs in batch_sizes:
            x = make_input(bs)
            t0 = time.perf_counter()
            with torch.inference_mode():
                compiled(x)
            warm[bs] = time.perf_counter() - t0
        return CompileResult(compiled, sum(warm.values()), warm, graphs_compiled() - before)
    ''')


def test_one_graph_per_shape_fails_the_recompilation_criterion(tmp_path):
    sub = make_submission(tmp_path, {"torch_compile.py": ONE_GRAPH_PER_SHAPE}, "phase2_optimization/compilation")
    g = _grade(tmp_path, 10, "--submission", str(sub))
    rec = g.criterion("p2.compilation.compile_recompiles")
    assert rec["verdict"] == "fail" and "one graph per shape" in rec["message"], rec["message"]
    assert g.verdicts["p2.compilation.compile_correct"] == "pass"     # right answers, just recompiled
    assert "not implemented yet: Task 2.10" in g.criterion("p2.compilation.compile_speedup_cpu")["message"]


def _qdq_variant(extra_options: str) -> str:
    """A learner's qdq_onnx that quantizes with ``extra_options`` (the rest as the guide says)."""
    return textwrap.dedent(f'''
        def qdq_onnx(onnx_path, reader, out_path):
            from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

            reader.rewind()
            quantize_static(str(onnx_path), str(out_path), reader, quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, extra_options={extra_options})
            return Path(out_path)
        ''')


@pytest.mark.parametrize("name, options, says", [
    # ONNX Runtime's defaults for activations: asymmetric, so the zero points are not 0.
    ("asymmetric", "{'WeightSymmetric': True, 'QuantizeBias': False}", "symmetric INT8"),
    # Biases quantized to INT32 behind a DequantizeLinear: TensorRT's parser refuses them.
    ("int32_bias", "{'ActivationSymmetric': True, 'WeightSymmetric': True}", "INT32 DequantizeLinear"),
])
def test_a_qdq_file_tensorrt_would_refuse_fails(tmp_path, name, options, says):
    sub = make_submission(tmp_path, {"trt_engine.py": _qdq_variant(options)}, "phase2_optimization/compilation")
    g = _grade(tmp_path, 11, "--submission", str(sub), "--criterion", "p2.compilation.trt_qdq_onnx")
    c = g.criterion("p2.compilation.trt_qdq_onnx")
    assert c["verdict"] == "fail" and c["points"] == 0, (name, c["message"])
    assert "TensorRT would refuse" in c["message"] and says in c["message"], c["message"]


def test_the_guide_s_qdq_settings_pass(tmp_path):
    """A learner who follows the guide's option list (not the reference's code) gets full marks."""
    options = ("{'ActivationSymmetric': True, 'WeightSymmetric': True, 'AddQDQPairToWeight': True, "
               "'DedicatedQDQPair': True, 'QuantizeBias': False}")
    sub = make_submission(tmp_path, {"trt_engine.py": _qdq_variant(options)}, "phase2_optimization/compilation")
    g = _grade(tmp_path, 11, "--submission", str(sub), "--criterion", "p2.compilation.trt_qdq_onnx")
    c = g.criterion("p2.compilation.trt_qdq_onnx")
    assert c["verdict"] == "pass" and c["points"] == 10, c["message"]
