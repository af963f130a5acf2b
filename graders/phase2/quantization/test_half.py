"""Task 2.5: half precision: BF16 where the CPU has it (an honest "no" elsewhere), FP16 on NVIDIA GPUs."""
from __future__ import annotations

import copy

import pytest
import torch

from ...checks import as_tensor, expect, get_field
from ...harness import cuda_sync, paired_ratio, time_callable
from ...plugin import criterion
from ...submission import LearnerError
from .workloads import digits, learner_timing, native_half, speed_model, sqnr, top1_pct

#: FP16 outputs of the untrained ResNet-50 must stay this close to FP32 before any speed credit.
FP16_GATE_SQNR_DB = 25.0


def _check_support_answers(learner) -> dict:
    answers = {}
    for (device, dtype), truth in native_half().items():
        sup = learner.call("precision_support", device, dtype)
        supported = get_field(sup, "supported", "PrecisionSupport")
        reason = get_field(sup, "reason", "PrecisionSupport")
        expect(isinstance(supported, bool), f"precision_support({device!r}, {dtype}).supported should be a bool")
        expect(isinstance(reason, str) and reason.strip(), f"precision_support({device!r}, {dtype}) needs a reason")
        expect(supported == truth, f"precision_support({device!r}, {dtype}) says supported={supported} "
                                   f"({reason!r}); on this machine the answer is {truth}")
        answers[f"{device}/{str(dtype).split('.')[-1]}"] = {"supported": supported, "reason": reason}
    return answers


def _half_params(model: torch.nn.Module, dtype: torch.dtype) -> bool:
    convs = [m.weight for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    return bool(convs) and all(w.dtype == dtype for w in convs)


@criterion("p2.quantization.bf16_cpu")
def test_bf16_cpu(grade, learner):
    answers = _check_support_answers(learner)
    d = digits()
    if not native_half()[("cpu", torch.bfloat16)]:
        try:
            learner.call("to_half_precision", copy.deepcopy(d["model"]), torch.bfloat16, "cpu")
        except LearnerError as e:
            expect("PrecisionNotSupported" in str(e), f"to_half_precision(bfloat16, 'cpu') should raise "
                                                      f"PrecisionNotSupported on this CPU; {e}")
        else:
            grade.fail("this CPU has no native BF16, yet to_half_precision(bfloat16, 'cpu') converted the model: "
                       "it should raise PrecisionNotSupported (unless allow_emulated=True)", details=answers)
            return
        pytest.skip(f"this CPU has no native BF16 ({answers['cpu/bfloat16']['reason']}); your code says so "
                    f"and refuses BF16, as it should")
    half = learner.call("to_half_precision", copy.deepcopy(d["model"]), torch.bfloat16, "cpu")
    expect(isinstance(half, torch.nn.Module), "to_half_precision should return an nn.Module")
    expect(_half_params(half, torch.bfloat16), "not really BF16: the returned model's Conv2d/Linear weights are "
                                               "not all torch.bfloat16")

    def predict(x):
        with torch.inference_mode():
            return as_tensor(learner.call_obj(half, x, what="your BF16 model"), "BF16 output")

    acc = top1_pct(predict, d["test_x"], d["test_y"])
    drop = d["fp32_acc"] - acc
    details = {"fp32_top1_pct": d["fp32_acc"], "bf16_top1_pct": acc, "support": answers}
    speed = ""
    if not grade.quick:  # BF16 speed is reported, not graded: it varies a lot between CPUs
        x = d["test_x"][:32]
        with torch.inference_mode():
            before = as_tensor(learner.call_obj(half, x, what="your BF16 model"), "BF16 output", shape=(32, 10)).argmax(1)

            def same_answers(out) -> str | None:  # the timed calls answer as the BF16 model did just before
                top1 = as_tensor(out, "BF16 output", shape=(32, 10)).argmax(1)
                return None if torch.equal(top1, before) else \
                    f"{int((top1 != before).sum())} of 32 images got another top-1 class than your BF16 model gave " \
                    f"for the same batch just before timing"

            t32 = time_callable(lambda: d["model"](x), repeats=5, warmup=2).median_ms
            t16 = learner_timing(lambda: time_callable(lambda: half(x), repeats=5, warmup=2, check=same_answers)).median_ms
        details.update(fp32_ms_batch32=t32, bf16_ms_batch32=t16, bf16_speedup_informational=t32 / t16)
        speed = f"; speed, for information: {t32 / t16:.2f}x FP32 at batch 32"
    grade.record(drop, details=details,
                 message=f"BF16 top-1 {acc:.2f}% vs FP32 {d['fp32_acc']:.2f}% (drop {drop:.2f} pt){speed}")


@criterion("p2.quantization.fp16_accuracy")
def test_fp16_accuracy(grade, learner):
    answers = _check_support_answers(learner)
    d = digits()
    half = learner.call("to_half_precision", copy.deepcopy(d["model"]), torch.float16, "cuda")
    expect(isinstance(half, torch.nn.Module), "to_half_precision should return an nn.Module")
    expect(_half_params(half, torch.float16), "not really FP16: Conv2d/Linear weights are not all torch.float16")

    def predict(x):
        with torch.inference_mode():
            return as_tensor(learner.call_obj(half, x.cuda(), what="your FP16 model"), "FP16 output")

    acc = top1_pct(predict, d["test_x"], d["test_y"])
    drop = d["fp32_acc"] - acc
    grade.record(drop, details={"fp32_top1_pct": d["fp32_acc"], "fp16_top1_pct": acc, "support": answers},
                 message=f"FP16 top-1 {acc:.2f}% vs FP32 {d['fp32_acc']:.2f}% (drop {drop:.2f} pt)")


@criterion("p2.quantization.fp16_speedup")
def test_fp16_speedup(grade, learner, benchmark):
    """ResNet-50 224x224 on the GPU: learner's FP16 against strict FP32 (TF32 off) built by the grader."""
    batch = 16 if grade.quick else 32
    half = learner.call("to_half_precision", copy.deepcopy(speed_model("resnet50")), torch.float16, "cuda")
    expect(isinstance(half, torch.nn.Module), "to_half_precision should return an nn.Module")
    expect(_half_params(half, torch.float16), "not really FP16: Conv2d/Linear weights are not all torch.float16")
    fp32 = copy.deepcopy(speed_model("resnet50")).cuda().eval()   # the cached CPU model stays on the CPU
    tf32 = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)

    def strict_fp32(x):
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
        try:
            with torch.inference_mode():
                return fp32(x)
        finally:
            torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = tf32

    def fp16(x):
        with torch.inference_mode():
            return half(x)

    x = torch.randn(4, 3, 224, 224, device="cuda")
    s = sqnr(strict_fp32(x).float().cpu(), as_tensor(learner.call_obj(half, x, what="your FP16 model"), "output"))
    if s < FP16_GATE_SQNR_DB:
        grade.fail(f"FP16 outputs differ from FP32 (SQNR {s:.1f} dB < {FP16_GATE_SQNR_DB:g} dB): no speed credit",
                   details={"sqnr_db": s})
        return
    make = lambda: (torch.randn(batch, 3, 224, 224, device="cuda"),)  # noqa: E731

    def close_to_fp32(want, got, inputs) -> str | None:  # the same gate on every timed call
        got_t = as_tensor(got, "your FP16 model's output", shape=want.shape)
        s_call = sqnr(want.float().cpu(), got_t)
        return None if s_call >= FP16_GATE_SQNR_DB else \
            f"FP16 outputs differ from FP32 (SQNR {s_call:.1f} dB < {FP16_GATE_SQNR_DB:g} dB)"

    r = learner_timing(lambda: paired_ratio(strict_fp32, fp16, threshold=grade.thresholds.pass_,
                                            make_inputs=make, pairs=10 if grade.quick else 20,
                                            warmup=3, sync=cuda_sync, benchmark=benchmark, check=close_to_fp32))

    def tf32_fp32(inp):  # PyTorch's default for convolutions on Ampere and newer, for information
        with torch.inference_mode():
            return fp32(inp)

    def close_to_strict(_, got, inputs) -> str | None:  # against strict FP32 (TF32 has its own rounding)
        return close_to_fp32(strict_fp32(inputs[0]), got, inputs)

    r_tf32 = learner_timing(lambda: paired_ratio(tf32_fp32, fp16, make_inputs=make, pairs=8, warmup=2, sync=cuda_sync,
                                                 check=close_to_strict))
    grade.record(r.median, interval=r.interval, noise=r.noise,
                 details={**r.details("fp32", "fp16"), "sqnr_db": s, "batch": batch,
                          "speedup_over_tf32_informational": r_tf32.median, "gpu": torch.cuda.get_device_name()},
                 message=f"ResNet-50 224x224 batch {batch}: FP32 {r.a_ms.median:.1f} ms, your FP16 "
                         f"{r.b_ms.median:.1f} ms (over TF32: {r_tf32.median:.2f}x; SQNR {s:.1f} dB)")
