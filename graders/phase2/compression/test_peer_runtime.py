"""Task 2.16: a vendor runtime as a peer: the learner's OpenVINO FP32 model agrees with the grader's ONNX Runtime
session, their NNCF INT8 model keeps the digits accuracy and is faster than OpenVINO FP32 in the same run, and
their kernel profiles account for the time the grader measures.

The side-by-side table (ONNX Runtime FP32, OpenVINO FP32, OpenVINO INT8, one thread each, interleaved) is
measured by the grader in p2.compression.openvino_speedup and reported with it."""
from __future__ import annotations

import os

import pytest
import torch

from ...checks import expect
from ...harness import paired_ratio, threads, time_callable
from ...plugin import criterion
from ..quantization.workloads import export_fp32, ort_run, ort_session, speed_model, speed_name, work_dir
from .workloads import cached, digits, learner_timing, sqnr, top1_pct

os.environ.setdefault("NNCF_CI", "1")     # NNCF's telemetry off; the sandbox sets CI=true for OpenVINO's

#: OpenVINO FP32 logits must match ONNX Runtime's to this (max |difference| over max |logit|).
AGREE_TOL = 1e-4
#: The INT8 model's outputs on the speed workload must stay this close to FP32's, else no speed credit.
SPEED_GATE_SQNR_DB = 15.0
#: A kernel profile's total must lie within this band of the grader's own timing of one inference.
PROFILE_BAND = (0.3, 2.0)
#: At least this share of the INT8 model's convolution time must run in INT8 kernels.
MIN_I8_SHARE = 0.5


def _ov():
    return pytest.importorskip("openvino", reason="OpenVINO is not installed (pip install -e .)")


def _grader_compile(model):
    """The grader's own compile: one thread, FP32 arithmetic, profiling on."""
    ov = _ov()
    import openvino.properties as props
    import openvino.properties.hint as hints

    return ov.Core().compile_model(model, "CPU", {
        props.inference_num_threads: 1, props.num_streams: 1, hints.performance_mode: hints.PerformanceMode.LATENCY,
        hints.inference_precision: ov.Type.f32, hints.enable_cpu_pinning: False, props.enable_profiling: True})


def _run(compiled, x: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(compiled(x.detach().numpy().astype("float32", copy=False))[0].copy())


def _onnx(name: str):
    """The grader's FP32 ONNX export of the digits ResNet-18 or of a speed model."""
    def build():
        if name == "digits":
            d = digits()
            return export_fp32(d["model"], work_dir() / "ov_digits_fp32.onnx", d["test_x"][:1])
        return export_fp32(speed_model(name), work_dir() / f"ov_{name}_fp32.onnx", torch.randn(1, 3, 224, 224))

    return cached(f"ov-onnx:{name}", build)


def _compiled_by_learner(learner, model, what: str):
    """``compile_openvino(model, 1)``, checked to be a one-thread FP32 CompiledModel."""
    compiled = learner.call("compile_openvino", model, 1)
    expect(hasattr(compiled, "get_property") and hasattr(compiled, "create_infer_request"),
           f"compile_openvino should return an openvino.CompiledModel, got {type(compiled).__name__} ({what})")
    n = int(compiled.get_property("INFERENCE_NUM_THREADS"))
    hint = compiled.get_property("INFERENCE_PRECISION_HINT")
    precision = hint.get_type_name() if hasattr(hint, "get_type_name") else str(hint)
    expect(n == 1, f"compile_openvino(..., threads=1) compiled {what} with INFERENCE_NUM_THREADS = {n}: the "
                   f"comparison with a one-thread ONNX Runtime session is then not fair")
    expect(precision.lower() in ("f32", "float32"),
           f"compile_openvino compiled {what} with INFERENCE_PRECISION_HINT = {precision}: set it to f32 (on CPUs "
           f"with AMX or AVX-512 BF16 the default is bf16)")
    return compiled


def _fake_quantizes(model) -> tuple[int, int]:
    """(FakeQuantize nodes, Convolution + MatMul nodes) of an openvino.Model."""
    types = [op.get_type_name() for op in model.get_ops()]
    return types.count("FakeQuantize"), types.count("Convolution") + types.count("MatMul")


def _learner_int8(learner, name: str, calib: torch.Tensor) -> dict:
    """The learner's ``quantize_openvino`` on the grader's ONNX file of ``name``, checked to be INT8, once."""
    def build():
        ov = _ov()
        q = learner.call("quantize_openvino", _onnx(name), calib.clone())
        expect(isinstance(q, ov.Model), f"quantize_openvino should return an openvino.Model, got {type(q).__name__}")
        fq, compute = _fake_quantizes(q)
        expect(fq >= compute > 0, f"quantize_openvino's model has {fq} FakeQuantize nodes for {compute} convolutions "
                                  f"and matmuls: it is not quantized (nncf.quantize returns the INT8 model)")
        return {"model": q, "fake_quantize": fq, "compute_nodes": compute}

    return cached(f"ov-int8:{name}", build)


def _rows(rows, what: str) -> list:
    expect(isinstance(rows, (list, tuple)) and rows, f"{what} should return a non-empty list of KernelTime rows")
    for r in rows:
        try:
            ok = isinstance(r.node_type, str) and isinstance(r.exec_type, str) and float(r.ms) >= 0 and int(r.calls) >= 1
        except Exception:
            ok = False
        expect(ok, f"{what}: every row needs node_type and exec_type (str), calls (>= 1) and ms (>= 0), got {r!r}")
    return list(rows)


@criterion("p2.compression.openvino_agree")
def test_openvino_agree(grade, learner):
    _ov()
    d = digits()
    path = _onnx("digits")
    compiled = _compiled_by_learner(learner, path, "the digits ResNet-18")
    two = learner.call("compile_openvino", path, 2)
    problems = []
    if int(two.get_property("INFERENCE_NUM_THREADS")) != 2:
        problems.append(f"compile_openvino(..., threads=2) gives INFERENCE_NUM_THREADS = "
                        f"{two.get_property('INFERENCE_NUM_THREADS')}: pass the threads argument through")
    sess = ort_session(path, threads=1)
    worst = 0.0
    for i in range(0, 32, 8):
        x = d["test_x"][i:i + 8]
        want = ort_run(sess, x)
        got = torch.cat([_run(compiled, x[j:j + 1]) for j in range(len(x))])
        expect(got.shape == want.shape, f"OpenVINO's output has shape {tuple(got.shape)}, expected {tuple(want.shape)}")
        worst = max(worst, float((got - want).abs().max() / want.abs().max()))
    if worst > AGREE_TOL:
        problems.append(f"OpenVINO's logits differ from ONNX Runtime's by {worst:.2e} (relative) > {AGREE_TOL:g}: is "
                        f"the precision hint f32?")
    grade.record(len(problems), details={"relative_error": worst, "problems": problems[:5]},
                 message=(f"one thread, FP32: OpenVINO's logits within {worst:.1e} of ONNX Runtime's on 32 test images"
                          if not problems else f"{len(problems)} problem(s): " + "; ".join(problems[:3])))


@criterion("p2.compression.openvino_int8_accuracy")
def test_openvino_int8_accuracy(grade, learner):
    _ov()
    d = digits()
    art = _learner_int8(learner, "digits", d["calib_x"])
    compiled = _grader_compile(art["model"])
    acc = top1_pct(lambda x: _run(compiled, x), d["test_x"], d["test_y"])
    drop = d["fp32_acc"] - acc
    grade.record(drop, details={"fp32_top1_pct": d["fp32_acc"], "int8_top1_pct": acc,
                                "fake_quantize": art["fake_quantize"], "compute_nodes": art["compute_nodes"]},
                 message=f"top-1 on the test split: FP32 {d['fp32_acc']:.2f} %, OpenVINO INT8 {acc:.2f} % "
                         f"({art['fake_quantize']} FakeQuantize nodes for {art['compute_nodes']} convolutions "
                         f"and matmuls)")


@criterion("p2.compression.openvino_speedup")
def test_openvino_speedup(grade, learner, benchmark):
    """OpenVINO FP32 time / OpenVINO INT8 time, one thread, batch 1 at 224x224; ONNX Runtime FP32 in the table."""
    _ov()
    name = speed_name(grade.quick)
    g = torch.Generator().manual_seed(0)
    calib = torch.randn(4 if grade.quick else 8, 3, 224, 224, generator=g)
    path = _onnx(name)
    fp32 = _compiled_by_learner(learner, path, f"the {name} FP32 model")
    int8 = _compiled_by_learner(learner, _learner_int8(learner, name, calib)["model"], f"your {name} INT8 model")
    x = torch.randn(2, 3, 224, 224)
    worst = min(sqnr(_run(fp32, x[i:i + 1]), _run(int8, x[i:i + 1])) for i in range(len(x)))
    if worst < SPEED_GATE_SQNR_DB:
        grade.fail(f"your INT8 {name} is wrong: outputs differ from FP32 (SQNR {worst:.1f} dB < {SPEED_GATE_SQNR_DB:g} "
                   f"dB): no speed credit", details={"sqnr_db": worst})
        return

    def close(want, got, inputs) -> str | None:
        s = sqnr(want, got)
        return None if s >= SPEED_GATE_SQNR_DB else f"the INT8 output is off FP32 (SQNR {s:.1f} dB)"

    sess = ort_session(path, threads=1)
    pairs = 12 if grade.quick else 25
    inputs = lambda: (torch.randn(1, 3, 224, 224),)  # noqa: E731
    with threads(1):
        r = learner_timing(lambda: paired_ratio(lambda t: _run(fp32, t), lambda t: _run(int8, t),
                                                threshold=grade.thresholds.pass_, make_inputs=inputs, pairs=pairs,
                                                warmup=3, benchmark=benchmark, check=close))
        peer = learner_timing(lambda: paired_ratio(lambda t: ort_run(sess, t), lambda t: _run(fp32, t),
                                                   make_inputs=inputs, pairs=pairs, warmup=2, max_attempts=1))
    details = {**r.details("openvino_fp32", "openvino_int8"), "sqnr_db": worst, "model": name,
               "ort_fp32_ms": peer.a_ms.median, "openvino_fp32_over_ort": peer.median}
    grade.record(r.median, interval=r.interval, noise=r.noise, details=details,
                 message=f"{name} 224x224 batch 1, one thread each: ONNX Runtime FP32 {peer.a_ms.median:.1f} ms, "
                         f"OpenVINO FP32 {r.a_ms.median:.1f} ms ({peer.median:.2f}x ONNX Runtime), your OpenVINO INT8 "
                         f"{r.b_ms.median:.1f} ms ({r.median:.2f}x OpenVINO FP32)")


@criterion("p2.compression.kernel_profile")
def test_kernel_profile(grade, learner):
    _ov()
    d = digits()
    compiled = _grader_compile(_learner_int8(learner, "digits", d["calib_x"])["model"])
    x = d["test_x"][:1]
    problems = []
    # OpenVINO: the rows must be this model's executed nodes, and add up to the time the grader measures.
    rows = _rows(learner.call("kernel_profile", compiled, x.clone()), "kernel_profile")
    request = compiled.create_infer_request()
    request.infer({0: x.numpy()})
    executed = sum(1 for p in request.get_profiling_info() if str(p.status).endswith("EXECUTED"))
    with threads(1):
        ov_ms = time_callable(lambda: request.infer({0: x.numpy()}), repeats=20, warmup=3).median_ms
    total = sum(float(r.ms) for r in rows)
    calls = sum(int(r.calls) for r in rows)
    if calls != executed:
        problems.append(f"kernel_profile counts {calls} nodes per inference; the model executes {executed}")
    if not PROFILE_BAND[0] <= total / ov_ms <= PROFILE_BAND[1]:
        problems.append(f"kernel_profile's rows add up to {total:.3f} ms per inference; one inference takes "
                        f"{ov_ms:.3f} ms (the grader's median): is ms per inference, from real_time?")
    conv = [r for r in rows if r.node_type == "Convolution"]
    conv_ms = sum(float(r.ms) for r in conv)
    share = sum(float(r.ms) for r in conv if "i8" in r.exec_type.lower()) / conv_ms if conv_ms > 0 else 0.0
    if not conv:
        problems.append("kernel_profile shows no Convolution rows for a ResNet")
    elif share < MIN_I8_SHARE:
        problems.append(f"only {share:.0%} of the INT8 model's convolution time is in INT8 kernels by your profile "
                        f"(exec_type {sorted({r.exec_type for r in conv})})")
    # ONNX Runtime: the same checks against the grader's own one-thread session.
    path = _onnx("digits")
    ort_rows = _rows(learner.call("ort_kernel_profile", path, x.clone(), 1), "ort_kernel_profile")
    sess = ort_session(path, threads=1)
    with threads(1):
        ort_ms = time_callable(lambda: ort_run(sess, x), repeats=20, warmup=3).median_ms
    ort_total = sum(float(r.ms) for r in ort_rows)
    if not PROFILE_BAND[0] <= ort_total / ort_ms <= PROFILE_BAND[1]:
        problems.append(f"ort_kernel_profile's rows add up to {ort_total:.3f} ms per inference; one inference takes "
                        f"{ort_ms:.3f} ms: are the warm-up run's events left out and dur (µs) divided by 1000?")
    if not any("conv" in r.node_type.lower() for r in ort_rows):
        problems.append("ort_kernel_profile shows no Conv rows for a ResNet")
    top = [f"{r.node_type}/{r.exec_type} {float(r.ms):.3f} ms" for r in rows[:4]]
    ort_top = [f"{r.node_type}/{r.exec_type} {float(r.ms):.3f} ms" for r in ort_rows[:4]]
    grade.record(len(problems), details={"openvino_rows": top, "ort_rows": ort_top, "openvino_total_ms": total,
                                         "openvino_measured_ms": ov_ms, "ort_total_ms": ort_total,
                                         "ort_measured_ms": ort_ms, "int8_conv_share": share,
                                         "problems": problems[:5]},
                 message=(f"OpenVINO INT8 {total:.2f} ms profiled vs {ov_ms:.2f} ms measured, {share:.0%} of the "
                          f"convolution time in INT8 kernels; ONNX Runtime FP32 {ort_total:.2f} vs {ort_ms:.2f} ms"
                          if not problems else f"{len(problems)} problem(s): " + "; ".join(problems[:3])))
