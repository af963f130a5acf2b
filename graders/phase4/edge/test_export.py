"""Task 4.7: the classifier exported for the device, to ONNX (FP32 and INT8) and to ExecuTorch.

Every export is run by the grader in its runtime and compared with the grader's own FP32 model on fresh crops:
random ones for FP32 agreement (1e-3), and crops the detector cut from a clip of this grade for INT8 top-1
agreement (97 %). Sizes are the files' own.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

from ...plugin import criterion
from .workload import clip, original

FP32_ATOL = 1e-3
INT8_AGREE = 0.97
INT8_SIZE_SHARE = 0.35


def _crops(n: int = 96) -> np.ndarray:
    import cv2

    from labdata.proposals import propose_crops

    frames, _ = clip(1, 40)
    crops = np.concatenate([propose_crops(cv2.cvtColor(f, cv2.COLOR_BGR2GRAY))[1] for f in frames])
    return crops[:n]


def _calibration() -> np.ndarray:
    frames, _ = clip(2, 20)
    import cv2

    from labdata.proposals import propose_crops

    return np.concatenate([propose_crops(cv2.cvtColor(f, cv2.COLOR_BGR2GRAY))[1] for f in frames])[:64]


@criterion("p4.edge.export")
def test_export(grade, learner):
    import onnxruntime as ort

    folder = Path(tempfile.mkdtemp(prefix="p4-edge-export-"))
    model = original()
    problems: list[str] = []
    fp32 = Path(learner.call("export_onnx", model, folder / "fp32.onnx"))
    if not fp32.is_file():
        grade.fail(f"export_onnx returned {fp32}, which is not a file")
        return
    sess = ort.InferenceSession(str(fp32), providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    if names != ["crops"]:
        problems.append(f"the ONNX model's inputs are {names}, not ['crops']")
    worst = 0.0
    rng = np.random.default_rng()
    with torch.inference_mode():
        for n in (1, 3, 8):
            x = rng.standard_normal((n, 1, 32, 32)).astype(np.float32)
            try:
                got = sess.run(None, {names[0]: x})[0]
            except Exception as e:  # noqa: BLE001 - a learner's graph that ONNX Runtime rejects
                problems.append(f"ONNX Runtime could not run the FP32 model on {n} crops: {type(e).__name__}: {str(e)[:120]}")
                break
            worst = max(worst, float(np.abs(got - model(torch.from_numpy(x)).numpy()).max()))
    if worst > FP32_ATOL:
        problems.append(f"FP32 ONNX outputs differ from the model's by up to {worst:.2g} (at most {FP32_ATOL:g})")
    int8 = Path(learner.call("quantize_int8", fp32, folder / "int8.onnx", _calibration()))
    share = agree = None
    if not int8.is_file():
        problems.append(f"quantize_int8 returned {int8}, which is not a file")
    else:
        share = int8.stat().st_size / fp32.stat().st_size
        if share > INT8_SIZE_SHARE:
            problems.append(f"the INT8 file is {100 * share:.0f} % of the FP32 one's size (at most "
                            f"{100 * INT8_SIZE_SHARE:.0f} %): are the weights quantized?")
        crops = _crops()
        q = ort.InferenceSession(str(int8), providers=["CPUExecutionProvider"])
        with torch.inference_mode():
            want = model(torch.from_numpy(crops)).argmax(1).numpy()
        agree = float((q.run(None, {q.get_inputs()[0].name: crops})[0].argmax(1) == want).mean())
        if agree < INT8_AGREE:
            problems.append(f"the INT8 model's top-1 agrees with FP32 on {100 * agree:.1f} % of {len(crops)} crops "
                            f"from a clip (at least {100 * INT8_AGREE:.0f} %)")
    grade.record(len(problems), message="; ".join(problems) or f"FP32 within {worst:.1g}; INT8 at {100 * share:.0f} % "
                 f"of the size, top-1 agreement {100 * agree:.1f} %",
                 details={"problems": problems, "fp32_max_abs_diff": worst, "int8_size_share": share,
                          "int8_top1_agreement": agree, "fp32_bytes": fp32.stat().st_size})


@criterion("p4.edge.executorch")
def test_executorch(grade, learner):
    try:
        from executorch.runtime import Runtime
    except ImportError as e:
        pytest.skip(f"ExecuTorch is not installed ({type(e).__name__}); `make setup` installs it (the `edge` extra)")
    folder = Path(tempfile.mkdtemp(prefix="p4-edge-et-"))
    model = original()
    problems: list[str] = []
    runtime = Runtime.get()
    crops = _crops(64)
    crops = crops[: len(crops) // 4 * 4]
    with torch.inference_mode():
        want = model(torch.from_numpy(crops))
    results = {}
    for int8 in (False, True):
        kind = "INT8" if int8 else "FP32"
        path = Path(learner.call("export_executorch", model, folder / f"{kind}.pte", int8=int8,
                                 calibration=_calibration() if int8 else None))
        if not path.is_file():
            problems.append(f"export_executorch(int8={int8}) returned {path}, which is not a file")
            continue
        try:
            method = runtime.load_program(str(path)).load_method("forward")
            got = torch.cat([method.execute([torch.from_numpy(crops[i:i + 4])])[0] for i in range(0, len(crops), 4)])
        except Exception as e:  # noqa: BLE001 - a program ExecuTorch rejects
            problems.append(f"ExecuTorch could not run the {kind} program on batches of 4: {type(e).__name__}: "
                            f"{str(e)[:120]}")
            continue
        diff = float((got - want).abs().max())
        agree = float((got.argmax(1) == want.argmax(1)).float().mean())
        results[kind] = {"bytes": path.stat().st_size, "max_abs_diff": diff, "top1_agreement": agree}
        if not int8 and diff > FP32_ATOL:
            problems.append(f"the FP32 program's outputs differ from the model's by up to {diff:.2g} (at most {FP32_ATOL:g})")
        if int8 and agree < INT8_AGREE:
            problems.append(f"the INT8 program's top-1 agrees with FP32 on {100 * agree:.1f} % of crops "
                            f"(at least {100 * INT8_AGREE:.0f} %)")
    if "FP32" in results and "INT8" in results:
        share = results["INT8"]["bytes"] / results["FP32"]["bytes"]
        results["int8_size_share"] = share
        if share > INT8_SIZE_SHARE:
            problems.append(f"the INT8 program is {100 * share:.0f} % of the FP32 one's size (at most "
                            f"{100 * INT8_SIZE_SHARE:.0f} %)")
    grade.record(len(problems), message="; ".join(problems) or "FP32 and INT8 .pte programs run in ExecuTorch's runtime "
                 f"and agree with the model (INT8 top-1 {100 * results['INT8']['top1_agreement']:.1f} %)",
                 details={"problems": problems, **{k: v for k, v in results.items()}})
