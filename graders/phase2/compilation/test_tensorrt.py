"""Task 2.11: TensorRT engines built by the learner from the grader's ONNX files, run and timed by the grader.

``p2.compilation.trt_qdq_onnx`` runs on any machine: the learner's explicit-quantization (Q/DQ) file is checked
for the form TensorRT builds and run in ONNX Runtime. The engine criteria need an NVIDIA GPU and the
``tensorrt`` package (the optional ``gpu`` extra, TensorRT 10 or 11); elsewhere each is skipped with that reason.
"""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch

from ...checks import as_tensor, expect
from ...harness import paired_ratio
from ...plugin import criterion
from .qdq_rules import parse_problems, unquantized_layers
from .workloads import (digits_resnet18, grader_export, grader_session, rel_diff, resnet18_224, resnet18_224_onnx,
                        run_session, tensorrt_or_skip)

#: The FP16 ResNet-18 engine's outputs within this of eager FP32 (max |diff| / max |eager|), before and during timing.
FP16_GATE_REL = 2e-2
_ENGINES: dict[str, bytes] = {}
_LOGGER: list = []


def _logger(trt):
    """One TensorRT logger for the grader's own runtime (TensorRT keeps the first logger it is given)."""
    if not _LOGGER:
        _LOGGER.append(trt.Logger(trt.Logger.ERROR))
    return _LOGGER[0]


def _digits_onnx(tmp_path: Path) -> Path:
    model, x, _ = digits_resnet18()
    path = tmp_path / "digits_resnet18.onnx"
    return path if path.is_file() else grader_export(model, x[:2], path)


def _build(learner, trt, key: str, onnx_path: Path, reader=None, **config) -> bytes:
    """The learner's engine, checked to be one: the grader's own TensorRT runtime must deserialise it."""
    if key in _ENGINES:
        return _ENGINES[key]
    cfg = learner.call("TRTConfig", **config)
    args = (onnx_path, cfg) if reader is None else (onnx_path, cfg, reader)
    engine = learner.call("build_engine", *args)
    expect(isinstance(engine, (bytes, bytearray, memoryview)),
           f"build_engine should return the serialised engine as bytes, got {type(engine).__name__}")
    engine = bytes(engine)
    check = trt.Runtime(_logger(trt)).deserialize_cuda_engine(engine)
    expect(check is not None, "TensorRT cannot deserialise the bytes build_engine returned")
    _ENGINES[key] = engine
    return engine


def _runner(learner, engine: bytes, tmp_path: Path, name: str):
    """Serialise to a file and reload through the learner's load_engine (the round trip is part of the task)."""
    f = tmp_path / f"{name}.plan"
    f.write_bytes(engine)
    runner = learner.call("load_engine", f)
    expect(callable(runner), f"load_engine returned {type(runner).__name__}, which cannot be called")
    return runner


def _logits(learner, runner, x: torch.Tensor, what: str) -> torch.Tensor:
    out = learner.call_obj(runner, x.cuda(), what=what)
    torch.cuda.synchronize()
    return as_tensor(out, f"{what}'s output", shape=(x.shape[0], 10))


def _digits_top1(learner, runner, what: str, bs: int = 32) -> tuple[float, float, float, float]:
    """(engine top-1, eager top-1, max |engine - eager|, top-1 agreement) on the digits test split."""
    model, x, y = digits_resnet18()
    right, right_eager, agree, worst = 0, 0, 0, 0.0
    for i in range(0, x.shape[0], bs):
        xb = x[i:i + bs]
        with torch.inference_mode():
            want = model(xb)
        got = _logits(learner, runner, xb, what)
        worst = max(worst, float((got - want).abs().max()))
        right += int((got.argmax(1) == y[i:i + bs]).sum())
        right_eager += int((want.argmax(1) == y[i:i + bs]).sum())
        agree += int((got.argmax(1) == want.argmax(1)).sum())
    n = x.shape[0]
    return 100 * right / n, 100 * right_eager / n, worst, agree / n


class _Calibration:
    """The grader's own calibration reader (ONNX Runtime's protocol) over the digits calibration split."""

    def __init__(self, batch: int = 8) -> None:
        from labdata import catalog

        images, _ = catalog.get("digits_resnet18").dataset("calib")          # disjoint from the test split
        self.data = np.ascontiguousarray(images.numpy(), dtype=np.float32)
        self.batch, self.index, self.given = batch, 0, 0

    def get_next(self):
        i = self.index * self.batch
        if i + self.batch > self.data.shape[0]:
            return None
        self.index += 1
        self.given += 1
        return {"input": self.data[i:i + self.batch].copy()}

    def rewind(self) -> None:
        self.index = 0


@criterion("p2.compilation.trt_qdq_onnx")
def test_trt_qdq_onnx(grade, learner, tmp_path):
    import onnx

    reader = _Calibration()
    target = tmp_path / "your_int8_qdq.onnx"
    got = learner.call("qdq_onnx", _digits_onnx(tmp_path), reader, target)
    expect(isinstance(got, (str, Path)) and Path(got).is_file(), f"qdq_onnx should return the path of the file it wrote, "
                                                                f"got {got!r}")
    try:
        model = onnx.load(str(got))
        onnx.checker.check_model(model)
    except Exception as e:  # noqa: BLE001 - any complaint about the file is the learner's
        expect(False, f"your Q/DQ file is not a valid ONNX model: {type(e).__name__}: {str(e)[:300]}")
    ops = [n.op_type for n in model.graph.node]
    problems, plain = parse_problems(model), unquantized_layers(model)
    details = {"quantize_nodes": ops.count("QuantizeLinear"), "dequantize_nodes": ops.count("DequantizeLinear"),
               "unquantized_layers": plain[:10], "calibration_batches_read": reader.given,
               "bytes": Path(got).stat().st_size}
    if not ops.count("QuantizeLinear"):
        grade.fail("your file has no QuantizeLinear node: it is not a Q/DQ (explicitly quantized) model; "
                   "use quant_format=QuantFormat.QDQ", details=details)
        return
    if problems:
        grade.fail(f"TensorRT would refuse {len(problems)} Q/DQ node(s): {problems[0]}", details={**details,
                   "problems": problems[:10]})
        return
    if plain:
        grade.fail(f"{len(plain)} layer(s) are not quantized (no DequantizeLinear before their input or their weight), "
                   f"e.g. {plain[0]}: the engine would run them in FP32", details=details)
        return
    # Accuracy of the file as written: ONNX Runtime with its optimizations off runs each Q/DQ pair as written
    # (quantize, round, dequantize in float), the same arithmetic on every CPU, and what TensorRT's INT8 layers
    # compute up to their accumulation order.
    model_fp32, x, y = digits_resnet18()
    session = grader_session(Path(got), level="ORT_DISABLE_ALL")
    right = right_eager = 0
    for i in range(0, x.shape[0], 64):
        xb = x[i:i + 64]
        with torch.inference_mode():
            right_eager += int((model_fp32(xb).argmax(1) == y[i:i + 64]).sum())
        out = as_tensor(run_session(session, xb), "your Q/DQ model's output", shape=(xb.shape[0], 10))
        right += int((out.argmax(1) == y[i:i + 64]).sum())
    n = x.shape[0]
    top1, top1_eager = 100 * right / n, 100 * right_eager / n
    grade.record(top1_eager - top1, message=f"Q/DQ file in ONNX Runtime: top-1 {top1:.2f} % vs eager FP32 {top1_eager:.2f} % "
                                            f"({details['quantize_nodes']} QuantizeLinear, every one symmetric INT8, "
                                            f"{reader.given} calibration batches read)",
                 details={**details, "qdq_top1": top1, "top1_eager": top1_eager})


@criterion("p2.compilation.trt_fp32_equivalent")
def test_trt_fp32_equivalent(grade, learner, tmp_path):
    trt = tensorrt_or_skip()
    engine = _build(learner, trt, "fp32", _digits_onnx(tmp_path), precision="fp32", min_batch=1, opt_batch=32,
                    max_batch=32)
    runner = _runner(learner, engine, tmp_path, "fp32")
    top1, top1_eager, worst, agree = _digits_top1(learner, runner, "your FP32 engine")
    model, x, _ = digits_resnet18()
    for bs in (1, 7):                                  # the profile's other batch sizes run too
        with torch.inference_mode():
            want = model(x[:bs])
        worst = max(worst, float((_logits(learner, runner, x[:bs], "your FP32 engine") - want).abs().max()))
    details = {"max_abs_diff": worst, "top1_agreement": agree, "top1": top1, "top1_eager": top1_eager,
               "engine_bytes": len(engine)}
    if agree < 1.0:
        grade.fail(f"top-1 agreement with eager PyTorch is {agree:.2%}; it must be 100 % (max |difference| "
                   f"{worst:.2e}): is TF32 still on?", value=worst, details=details)
        return
    grade.record(worst, message=f"max |engine - eager| = {worst:.2e} on the digits test split (batch sizes 32, 1, 7), "
                                f"engine reloaded from a file; top-1 {top1:.2f} %", details=details)


@criterion("p2.compilation.trt_fp16_speedup")
def test_trt_fp16_speedup(grade, learner, tmp_path, benchmark):
    trt = tensorrt_or_skip()
    # Accuracy first: the digits model in FP16 must classify like FP32 eager.
    dig = _build(learner, trt, "fp16_digits", _digits_onnx(tmp_path), precision="fp16", min_batch=1, opt_batch=32,
                 max_batch=32)
    top1, top1_eager, _, _ = _digits_top1(learner, _runner(learner, dig, tmp_path, "fp16_digits"), "your FP16 engine")
    if top1 < top1_eager - 1.0:
        grade.fail(f"FP16 engine top-1 {top1:.2f} % vs eager FP32 {top1_eager:.2f} %: more than 1 point lost, "
                   f"no speed credit", details={"top1": top1, "top1_eager": top1_eager})
        return
    engine = _build(learner, trt, "fp16_r18", resnet18_224_onnx(), precision="fp16", min_batch=1, opt_batch=1,
                    max_batch=1)
    runner = _runner(learner, engine, tmp_path, "fp16_r18")
    model = copy.deepcopy(resnet18_224()).cuda().eval()
    worst = 0.0
    for _ in range(3):
        x = torch.randn(1, 3, 224, 224, device="cuda")
        with torch.inference_mode():
            want = model(x)
        got = learner.call_obj(runner, x, what="your FP16 engine")
        torch.cuda.synchronize()
        worst = max(worst, rel_diff(as_tensor(got, "FP16 engine output", shape=(1, 1000)), want.cpu()))
    if worst > FP16_GATE_REL:
        grade.fail(f"FP16 engine outputs differ from eager FP32 by {worst:.2e} relative (more than {FP16_GATE_REL:g}): "
                   f"no speed credit", details={"rel_diff": worst})
        return

    def eager(x):
        with torch.inference_mode():
            return model(x)

    def close_to_eager(want, got, inputs) -> str | None:  # the gate above, on every timed call
        err = rel_diff(as_tensor(got, "FP16 engine output", shape=(1, 1000)), want.cpu())
        return None if err <= FP16_GATE_REL else \
            f"FP16 engine outputs differ from eager FP32 by {err:.2e} relative (more than {FP16_GATE_REL:g})"

    r = paired_ratio(eager, runner, threshold=grade.thresholds.pass_,
                     make_inputs=lambda: (torch.randn(1, 3, 224, 224, device="cuda"),),
                     pairs=50 if grade.quick else 100, warmup=5, sync=torch.cuda.synchronize, benchmark=benchmark,
                     check=close_to_eager)
    d = r.details("eager", "engine")
    grade.record(r.median, interval=r.interval, noise=r.noise,
                 message=f"PyTorch eager FP32 {d['eager_median_ms']:.2f} ms vs your FP16 engine "
                         f"{d['engine_median_ms']:.2f} ms (ResNet-18 224x224 batch 1); digits top-1 {top1:.2f} % "
                         f"(eager {top1_eager:.2f} %)",
                 details={**d, "rel_diff": worst, "top1": top1, "top1_eager": top1_eager})


@criterion("p2.compilation.trt_int8_accuracy")
def test_trt_int8_accuracy(grade, learner, tmp_path):
    trt = tensorrt_or_skip()
    from labdata import catalog

    calib, _ = catalog.get("digits_resnet18").dataset("calib")        # disjoint from the test split
    reader = learner.call("TRTBatchReader", calib, 8)                 # qdq_onnx calibrates on it, in build_engine
    path = _digits_onnx(tmp_path)
    int8 = _build(learner, trt, "int8", path, reader, precision="int8", min_batch=1, opt_batch=32, max_batch=32,
                  calibration_batches=32)
    fp32 = _build(learner, trt, "fp32", path, precision="fp32", min_batch=1, opt_batch=32, max_batch=32)
    expect(len(int8) <= 0.6 * len(fp32), f"the INT8 engine ({len(int8) / 2**20:.1f} MiB) is not much smaller than the "
                                         f"FP32 one ({len(fp32) / 2**20:.1f} MiB): are its weights INT8?")
    top1, top1_eager, worst, agree = _digits_top1(learner, _runner(learner, int8, tmp_path, "int8"), "your INT8 engine")
    drop = top1_eager - top1
    grade.record(drop, message=f"INT8 engine top-1 {top1:.2f} % vs eager FP32 {top1_eager:.2f} % "
                               f"(engine {len(int8) / 2**20:.1f} MiB, FP32 {len(fp32) / 2**20:.1f} MiB)",
                 details={"top1": top1, "top1_eager": top1_eager, "top1_agreement": agree, "max_abs_diff": worst,
                          "int8_bytes": len(int8), "fp32_bytes": len(fp32)})
