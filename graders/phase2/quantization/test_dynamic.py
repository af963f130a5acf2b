"""Task 2.3: INT8 Linear layers by hand (really INT8, accurate), and PyTorch's dynamic INT8 (fast)."""
from __future__ import annotations

import copy
import random

import torch
from torch import nn

from ...checks import as_tensor, expect
from ...harness import paired_ratio, threads
from ...plugin import criterion
from .workloads import learner_timing, sqnr, state_dict_bytes, torch_quantized_modules

#: Outputs of the dynamic INT8 MLP must stay this close to FP32, before timing and on every timed call.
SPEED_GATE_SQNR_DB = 25.0


def _mlp(sizes, seed: int) -> nn.Module:
    """Linear layers, one nested a level down (a replacement must reach it too)."""
    torch.manual_seed(seed)
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.GELU())
    return nn.Sequential(layers[0], nn.Sequential(*layers[1:3]), *layers[3:]).eval()


def _run(learner, model, x, what):
    with torch.inference_mode():
        return as_tensor(learner.call_obj(model, x.clone(), what=what), f"output of {what}")


def _int8_tensors(model: nn.Module) -> list[torch.Tensor]:
    tensors = list(model.state_dict().values()) + [b for _, b in model.named_buffers()]
    return [t for t in tensors if isinstance(t, torch.Tensor) and t.dtype in (torch.int8, torch.uint8)]


@criterion("p2.quantization.dynamic_int8")
def test_dynamic_int8(grade, learner):
    seed = random.SystemRandom().randrange(2**31)
    sizes = [256, 512, 512, 128]
    model = _mlp(sizes, seed)
    x = torch.randn(16, sizes[0])
    with torch.inference_mode():
        want = model(x)
    fp32_bytes = state_dict_bytes(model)
    shapes = {(b, a) for a, b in zip(sizes[:-1], sizes[1:])}
    results, details = {}, {}
    for mode in ("dynamic", "weight_only"):
        q = learner.call("quantize_linears", copy.deepcopy(model), mode=mode)
        expect(isinstance(q, nn.Module), f"quantize_linears(mode={mode!r}) should return an nn.Module")
        left = [n for n, m in q.named_modules() if type(m) is nn.Linear]
        expect(not left, f"mode={mode!r}: nn.Linear layers left unreplaced: {left}")
        int8 = _int8_tensors(q)
        found = {tuple(t.shape) for t in int8}
        expect(shapes <= found, f"mode={mode!r}: no 8-bit weight tensor of shape {sorted(shapes - found)} in the "
                                f"model's state dict / buffers")
        ratio = state_dict_bytes(q) / fp32_bytes
        expect(ratio <= 0.30, f"mode={mode!r}: the state dict is {ratio:.2f}x the float one; INT8 weights make it "
                              f"at most 0.3x (is a float copy of the weights kept?)")
        got = _run(learner, q, x, f"the {mode} INT8 model")
        expect(got.shape == want.shape, f"mode={mode!r}: output shape {tuple(got.shape)}, expected {tuple(want.shape)}")
        results[mode] = sqnr(want, got)
        # The output must come from the 8-bit weights: wipe them and the output has to change.
        for t in int8:
            t.zero_()
        wiped = _run(learner, q, x, f"the {mode} INT8 model")
        expect(sqnr(got, wiped) < 10, f"mode={mode!r}: zeroing every 8-bit tensor left the output unchanged: "
                                      f"the forward pass does not use the INT8 weights")
        details[f"{mode}_sqnr_db"], details[f"{mode}_size_ratio"] = results[mode], ratio
    # PyTorch's own, on the same model and input, for comparison (not graded here).
    with torch.inference_mode():
        theirs = torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)(x)
    details["pytorch_dynamic_sqnr_db"] = sqnr(want, theirs)
    worst = min(results, key=results.get)
    grade.record(results[worst], details=details,
                 message=f"SQNR vs FP32: dynamic {results['dynamic']:.1f} dB, weight-only {results['weight_only']:.1f} "
                         f"dB (PyTorch's quantize_dynamic: {details['pytorch_dynamic_sqnr_db']:.1f} dB)")


@criterion("p2.quantization.dynamic_speedup")
def test_dynamic_speedup(grade, learner, benchmark):
    """A transformer-sized feed-forward block at batch 1: memory-bound, where INT8 weights pay.

    Correctness gates speed: SQNR against the grader's FP32 model >= ``SPEED_GATE_SQNR_DB`` on a batch of
    4 before timing, and on every timed call (warm-up included) against the FP32 output for the same input.
    """
    d = 1024
    model = _mlp([d, 4 * d, d, 4 * d, d], random.SystemRandom().randrange(2**31))
    q = learner.call("torch_dynamic_int8", copy.deepcopy(model))   # the FP32 baseline stays the grader's
    expect(isinstance(q, nn.Module), "torch_dynamic_int8 should return an nn.Module")
    n_q = torch_quantized_modules(q)
    expect(n_q >= 4, f"not really INT8: {n_q} quantized modules (torch.ao.nn.quantized.dynamic.Linear) in the "
                     f"returned model, expected one per Linear (4)")
    x = torch.randn(4, d)
    with torch.inference_mode():
        want, got = model(x), as_tensor(learner.call_obj(q, x.clone(), what="your dynamic INT8 model"), "output")
    s = sqnr(want, got)
    if s < SPEED_GATE_SQNR_DB:
        grade.fail(f"outputs differ from FP32 (SQNR {s:.1f} dB < {SPEED_GATE_SQNR_DB:g} dB): no speed credit",
                   details={"sqnr_db": s})
        return

    def fp32(inp):
        with torch.inference_mode():
            return model(inp)

    def int8(inp):
        with torch.inference_mode():
            return q(inp)

    def same_as_fp32(want_out, got_out, inputs) -> str | None:
        got_t = as_tensor(got_out, "your dynamic INT8 model's output", shape=want_out.shape)
        s_call = sqnr(want_out, got_t)
        return None if s_call >= SPEED_GATE_SQNR_DB else \
            f"your dynamic INT8 model's output is off FP32 (SQNR {s_call:.1f} dB < {SPEED_GATE_SQNR_DB:g} dB)"

    with threads(1):  # one thread on both sides: steadier on a shared machine
        r = learner_timing(lambda: paired_ratio(fp32, int8, threshold=grade.thresholds.pass_,
                                                make_inputs=lambda: (torch.randn(1, d),),
                                                pairs=15 if grade.quick else 30, warmup=3, benchmark=benchmark,
                                                check=same_as_fp32))
    grade.record(r.median, interval=r.interval, noise=r.noise, details={**r.details("fp32", "int8"), "sqnr_db": s},
                 message=f"one thread: FP32 {r.a_ms.median:.2f} ms, dynamic INT8 {r.b_ms.median:.2f} ms (SQNR {s:.1f} dB; "
                         f"every timed call checked)")
