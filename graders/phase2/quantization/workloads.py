"""What the quantization criteria (test_*.py) compare learner code against, built by the grader.

Nothing here comes from the learner or from the reference: the FP32 ONNX exports, the ONNX Runtime
FP32 sessions, the eager baselines, the calibration data, SQNR and accuracy, and the inspection
that decides whether an "INT8" artifact really is INT8. Expensive artifacts (exports, the learner's
INT8 files) are built once per grading process and shared by the criteria that need them; a learner
error while building one is remembered and reported by each of those criteria.
"""
from __future__ import annotations

import atexit
import platform
import io
import math
import shutil
import tempfile
import warnings
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from ...checks import expect
from ...harness import ort_session_options
from ...submission import SubmissionError
from labdata.cpu import cpu_flags

__all__ = [
    "work_dir", "digits", "speed_model", "speed_name", "export_fp32", "ort_session", "ort_run",
    "GraderReader", "sqnr", "top1_pct", "state_dict_bytes", "onnx_int8_report", "torch_quantized_modules",
    "cached", "learner_onnx_int8", "NOT_INT8", "MAX_SIZE_RATIO", "native_half", "check_onnx_int8", "learner_timing",
]

#: An INT8 file may weigh at most this fraction of the FP32 file (8 of 32 bits, plus scales and graph).
MAX_SIZE_RATIO = 0.30
#: At least this share of Conv / MatMul / Gemm nodes must run in INT8 for a model to count as INT8.
MIN_QUANTIZED_SHARE = 0.90
NOT_INT8 = "not really INT8"

_WORK: Path | None = None
_CACHE: dict[str, Any] = {}


def work_dir() -> Path:
    """A folder for this grading process (deleted at exit)."""
    global _WORK
    if _WORK is None:
        _WORK = Path(tempfile.mkdtemp(prefix="lab-p2q-"))
        atexit.register(shutil.rmtree, _WORK, ignore_errors=True)
    return _WORK


def cached(key: str, build: Callable[[], Any]) -> Any:
    """``build()`` once per process; a SubmissionError it raised is raised again for every caller."""
    if key not in _CACHE:
        try:
            _CACHE[key] = ("ok", build())
        except SubmissionError as e:
            _CACHE[key] = ("err", e)
    kind, value = _CACHE[key]
    if kind == "err":
        raise SubmissionError(str(value))
    return value


# ---------------------------------------------------------------------------------------------------
# Workloads
# ---------------------------------------------------------------------------------------------------
def digits() -> dict:
    """The trained digits ResNet-18 (3x64x64) and its splits (test, calib, and train for the training criteria of
    the compression part); the FP32 accuracy, measured here."""
    def build():
        from labdata import catalog

        entry = catalog.get("digits_resnet18")
        model = entry.model.eval()
        test_x, test_y = entry.dataset("test")
        calib_x, _ = entry.dataset("calib")
        train_x, train_y = entry.dataset("train")
        acc = top1_pct(lambda x: _eager(model, x), test_x, test_y)
        return {"model": model, "test_x": test_x, "test_y": test_y, "calib_x": calib_x, "train_x": train_x,
                "train_y": train_y, "fp32_acc": acc}

    return cached("digits", build)


def speed_name(quick: bool) -> str:
    """ResNet-50 at 224x224 (quick mode: ResNet-18), untrained: a speed workload only."""
    return "resnet18" if quick else "resnet50"


def speed_model(name: str) -> nn.Module:
    def build():
        from labdata import catalog

        return catalog.build(name).eval()

    return cached(f"model:{name}", build)


def _eager(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return model(x)


def export_fp32(model: nn.Module, path: Path, example: torch.Tensor) -> Path:
    """The grader's own FP32 ONNX export: input "input", output "logits", dynamic batch, opset 17."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(model, (example,), str(path), input_names=["input"], output_names=["logits"],
                              opset_version=17, dynamo=False,
                              dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
        except Exception:  # the legacy exporter may be gone in a future torch
            torch.onnx.export(model, (example,), str(path), input_names=["input"], output_names=["logits"],
                              dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=256)},))
    return path


def ort_session(path: Path, threads: int | None = None):
    """An ONNX Runtime CPU session created by the grader, threads pinned (default: like PyTorch's)."""
    import onnxruntime as ort

    try:
        return ort.InferenceSession(str(path), sess_options=ort_session_options(threads),
                                    providers=["CPUExecutionProvider"])
    except Exception as e:  # a file the learner wrote that ONNX Runtime cannot load
        raise SubmissionError(f"ONNX Runtime cannot load {path.name}: {str(e).splitlines()[0][:300]}") from None


def ort_run(session, x: torch.Tensor) -> torch.Tensor:
    name = session.get_inputs()[0].name
    try:
        out = session.run(None, {name: np.ascontiguousarray(x.numpy(), dtype=np.float32)})[0]
    except Exception as e:
        raise SubmissionError(f"running the INT8 model failed: {str(e).splitlines()[0][:300]}") from None
    return torch.from_numpy(np.asarray(out, dtype=np.float32))


class GraderReader:
    """The grader's own CalibrationDataReader (``get_next()`` -> feed dict or None)."""

    def __init__(self, name: str, batches: list[torch.Tensor]):
        self.name, self.batches, self.i = name, [b.numpy().astype(np.float32) for b in batches], 0

    def get_next(self):
        if self.i >= len(self.batches):
            return None
        self.i += 1
        return {self.name: self.batches[self.i - 1]}

    def rewind(self):
        self.i = 0


def native_half() -> dict[tuple[str, torch.dtype], bool]:
    """The grader's own view of native half precision on this machine."""
    flags, arm = cpu_flags(), platform.machine().lower() in ("arm64", "aarch64")
    bf16 = bool({"bf16"} & flags) if arm else bool({"avx512_bf16", "amx_bf16"} & flags)
    fp16 = bool({"asimdhp"} & flags) if arm else bool({"avx512_fp16", "amx_fp16"} & flags)
    cuda = torch.cuda.is_available()
    return {("cpu", torch.bfloat16): bf16, ("cpu", torch.float16): fp16, ("cuda", torch.float16): cuda,
            ("cuda", torch.bfloat16): cuda and torch.cuda.get_device_capability()[0] >= 8}


# ---------------------------------------------------------------------------------------------------
# Measures
# ---------------------------------------------------------------------------------------------------
def sqnr(reference: torch.Tensor, approx: torch.Tensor) -> float:
    """SQNR in dB, float64; inf when equal."""
    ref = reference.detach().double().flatten()
    noise = float(((ref - approx.detach().double().flatten()) ** 2).sum())
    signal = float((ref ** 2).sum())
    if noise == 0:
        return math.inf
    return 10 * math.log10(signal / noise) if signal > 0 else -math.inf


def top1_pct(predict: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor,
             batch: int = 64) -> float:
    correct = 0
    for i in range(0, len(x), batch):
        out = predict(x[i:i + batch])
        expect(tuple(out.shape) == (len(x[i:i + batch]), 10),
               f"the model's output has shape {tuple(out.shape)}, expected ({len(x[i:i + batch])}, 10)")
        expect(bool(torch.isfinite(out).all()), "the model's output contains NaN or inf")
        correct += int((out.argmax(1) == y[i:i + batch]).sum())
    return 100.0 * correct / len(x)


def state_dict_bytes(model: nn.Module) -> int:
    """Bytes of ``torch.save(model.state_dict())`` (a learner's model that cannot be saved fails its criterion)."""
    buf = io.BytesIO()
    try:
        torch.save(model.state_dict(), buf)
    except Exception as e:
        raise SubmissionError(f"saving the model's state dict failed: {type(e).__name__}: {str(e)[:200]}") from None
    return buf.getbuffer().nbytes


def learner_timing(run: Callable[[], Any]) -> Any:
    """Run a timing whose callables include learner code: its exceptions fail the criterion."""
    try:
        return run()
    except SubmissionError:
        raise
    except Exception as e:
        raise SubmissionError(f"your model failed while being timed: {type(e).__name__}: {str(e)[:300]}") from None


# ---------------------------------------------------------------------------------------------------
# Is it really INT8?
# ---------------------------------------------------------------------------------------------------
_INTEGER_OPS = {"QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger", "QGemm"}
_INT8_TYPES = {2, 3}  # onnx.TensorProto.UINT8, INT8


def onnx_int8_report(path: Path) -> dict:
    """The grader's own inspection of an ONNX file: which Conv/MatMul/Gemm compute in INT8.

    A node counts as INT8 when it is an integer operator (QLinearConv, ConvInteger ...), or a float
    Conv/MatMul/Gemm whose data input and weight both come from DequantizeLinear, the weight's
    DequantizeLinear reading an 8-bit initializer (the QDQ layout ONNX Runtime fuses).
    """
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:
        raise SubmissionError(f"{path.name} is not a readable ONNX file: {str(e)[:200]}") from None
    graph = model.graph
    external = [t.name for t in graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    inits = {t.name: t for t in graph.initializer}
    consts = {o: n for n in graph.node if n.op_type == "Constant" for o in n.output}
    producer = {o: n for n in graph.node for o in n.output}
    ops = Counter(n.op_type for n in graph.node)

    def int8_source(name: str) -> bool:
        if name in inits:
            return inits[name].data_type in _INT8_TYPES
        c = consts.get(name)
        if c is not None:
            return any(a.name == "value" and a.t.data_type in _INT8_TYPES for a in c.attribute)
        q = producer.get(name)  # weights quantized at run time by a QuantizeLinear also count
        return q is not None and q.op_type == "QuantizeLinear"

    compute = quantized = 0
    for n in graph.node:
        if n.op_type in _INTEGER_OPS:
            compute += 1
            quantized += 1
        elif n.op_type in ("Conv", "MatMul", "Gemm"):
            compute += 1
            feeds = [producer.get(i) for i in n.input[:2]]
            if all(f is not None and f.op_type == "DequantizeLinear" for f in feeds):
                quantized += int(int8_source(feeds[1].input[0]))
    share = quantized / compute if compute else 0.0
    return {"ops": dict(ops), "compute_nodes": compute, "int8_nodes": quantized, "int8_share": share,
            "external_data": external, "bytes": path.stat().st_size}


def check_onnx_int8(path: Path, fp32_bytes: int) -> dict:
    """Gate: really INT8 and small, else SubmissionError. Returns the report with ``size_ratio``."""
    rep = onnx_int8_report(path)
    expect(not rep["external_data"], f"{NOT_INT8}: {path.name} keeps {len(rep['external_data'])} tensors in "
                                     f"external data files; save the model as one file")
    expect(rep["compute_nodes"] > 0, f"{NOT_INT8}: {path.name} has no Conv/MatMul/Gemm nodes at all")
    top = ", ".join(f"{k} x{v}" for k, v in Counter(rep["ops"]).most_common(6))
    expect(rep["int8_share"] >= MIN_QUANTIZED_SHARE,
           f"{NOT_INT8}: only {rep['int8_nodes']} of {rep['compute_nodes']} Conv/MatMul/Gemm nodes run in INT8 "
           f"(need {MIN_QUANTIZED_SHARE:.0%}; QLinearConv, or Conv between DequantizeLinear nodes with 8-bit "
           f"weights). Ops in the file: {top}")
    rep["size_ratio"] = rep["bytes"] / fp32_bytes
    expect(rep["size_ratio"] <= MAX_SIZE_RATIO,
           f"{NOT_INT8}: the file is {rep['size_ratio']:.2f}x the FP32 file ({rep['bytes']:,} of {fp32_bytes:,} "
           f"bytes); 8-bit weights make it at most {MAX_SIZE_RATIO}x")
    return rep


def torch_quantized_modules(model: nn.Module) -> int:
    """Modules whose class lives in ``torch.ao.nn.quantized`` (static or dynamic) or its fused forms."""
    return sum(1 for m in model.modules()
               if type(m).__module__.startswith(("torch.ao.nn.quantized", "torch.ao.nn.intrinsic.quantized",
                                                 "torch.nn.quantized", "torch.nn.intrinsic.quantized")))


# ---------------------------------------------------------------------------------------------------
# The learner's INT8 ONNX files, built once per process
# ---------------------------------------------------------------------------------------------------
def learner_onnx_int8(learner, key: str, model: nn.Module, example: torch.Tensor,
                      reader_factory: Callable[[], Any]) -> dict:
    """Export ``model`` (grader), hand the learner a COPY of the FP32 file, quantize with their code.

    Returns ``{"fp32": grader's own FP32 path, "int8": learner's INT8 path, "report": gate report}``.
    The grader's baselines always use its own FP32 file, never the copy the learner could touch.
    """
    def build():
        folder = work_dir() / key
        folder.mkdir(parents=True, exist_ok=True)
        fp32 = export_fp32(model, folder / "fp32.onnx", example)
        given = folder / "learner" / "model_fp32.onnx"
        given.parent.mkdir(exist_ok=True)
        shutil.copy2(fp32, given)
        int8 = folder / "learner" / "model_int8.onnx"
        config = learner.call("StaticQuantConfig")
        reader = reader_factory()
        learner.call("quantize_static_onnx", given, int8, reader, config)
        expect(int8.is_file(), f"quantize_static_onnx did not write {int8.name} (the int8_onnx_path it was given)")
        report = check_onnx_int8(int8, fp32.stat().st_size)
        return {"fp32": fp32, "int8": int8, "report": report}

    return cached(f"onnx:{key}", build)
