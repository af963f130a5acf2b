"""Task 1.1: one predictor for every model format."""
from __future__ import annotations

import warnings

import torch
import torchvision

from ..checks import as_tensor, expect
from ..plugin import criterion

ARCH, CLASSES = "resnet18", 10


def _export_all(model: torch.nn.Module, x: torch.Tensor, tmp) -> dict[str, object]:
    """The grader writes every file format itself, from one eager model."""
    paths = {}
    sd = tmp / "model_state.pth"
    torch.save(model.state_dict(), sd)
    paths["state_dict"] = sd
    ts = tmp / "model_script.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.trace(model, x).save(str(ts))
    paths["torchscript"] = ts
    ep = tmp / "model_export.pt2"
    torch.export.save(torch.export.export(model, (x,)), str(ep))
    paths["export"] = ep
    onnx = tmp / "model.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(model, (x,), str(onnx), input_names=["input"], output_names=["logits"],
                              dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, dynamo=False)
        except Exception:  # the legacy exporter may be gone in a future torch
            torch.onnx.export(model, (x,), str(onnx), input_names=["input"], output_names=["logits"],
                              dynamic_shapes={"x": {0: torch.export.Dim("batch", min=1, max=64)}})
    paths["onnx"] = onnx
    return paths


@criterion("p1.formats_agree")
def test_formats_agree(grade, learner, tmp_path):
    torch.manual_seed(1234)
    model = torchvision.models.get_model(ARCH, weights=None, num_classes=CLASSES).eval()
    x_export = torch.randn(2, 3, 64, 64)
    paths = _export_all(model, x_export, tmp_path)
    x = torch.randn(2, 3, 64, 64)  # fresh input, never the one used to trace/export
    with torch.inference_mode():
        want = model(x)
    diffs = {}
    for kind, path in paths.items():
        kwargs = {"architecture": ARCH, "num_classes": CLASSES} if kind == "state_dict" else {}
        pred = learner.call("load_predictor", path, kind=kind, **kwargs)
        got = as_tensor(learner.call_obj(pred, x.clone(), what=f"the {kind} predictor"),
                        f"output of the {kind} predictor", shape=want.shape)
        diffs[kind] = float((got - want).abs().max())
    # Detection: the same files with kind=None must load as the same format.
    for kind in ("onnx", "export", "torchscript"):
        pred = learner.call("load_predictor", paths[kind])
        got_kind = getattr(pred, "kind", None)
        expect(got_kind == kind, f"load_predictor({paths[kind].name}) with kind=None detected "
                                 f"{got_kind!r}, expected {kind!r}")
    # A torchvision architecture by name: right shape, eval mode (same answer twice).
    pred = learner.call("load_predictor", ARCH, kind="torchvision", num_classes=CLASSES)
    a = as_tensor(learner.call_obj(pred, x.clone(), what="the torchvision predictor"), "torchvision output",
                  shape=want.shape)
    b = as_tensor(learner.call_obj(pred, x[:1].clone(), what="the torchvision predictor"), "torchvision output",
                  shape=(1, CLASSES))
    expect(torch.allclose(a[:1], b, atol=1e-4),
           "the torchvision predictor's output for a sample depends on the rest of the batch: "
           "is the model in eval() mode (BatchNorm)?")
    worst = max(diffs, key=diffs.get)
    grade.record(diffs[worst], message=f"worst format: {worst} ({diffs[worst]:.2e})",
                 details={f"max_abs_diff_{k}": v for k, v in diffs.items()})
