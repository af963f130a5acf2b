"""Task 1.1: every format loads into a Predictor that agrees with eager PyTorch."""
from __future__ import annotations

import shutil
import warnings

import pytest
import torch

from .impl import p1

from .conftest import IMAGE, make_tiny_cnn

pytestmark = pytest.mark.phase1_task1

ATOL = 1e-4   # the tolerance p1.formats_agree applies


@pytest.mark.parametrize("kind", ["torchscript", "export", "onnx"])
def test_saved_formats_agree_with_eager(saved_formats, kind):
    eager = make_tiny_cnn()
    x = torch.randn(5, *IMAGE)                     # a batch size the export never saw
    predictor = p1.load_predictor(saved_formats[kind])
    assert predictor.kind == kind                  # detected from the file
    assert predictor.device == "cpu"
    out = predictor(x)
    with torch.inference_mode():
        expected = eager(x)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    assert out.shape == (5, 10)
    assert (out - expected).abs().max().item() <= ATOL


def test_explicit_kind_matches_detection(saved_formats):
    predictor = p1.load_predictor(saved_formats["onnx"], kind="onnx")
    assert predictor.kind == "onnx"


def test_torchscript_detected_by_archive_content_not_suffix(saved_formats, tmp_path):
    renamed = tmp_path / "model.pt"                # TorchScript files are often called .pt
    shutil.copy(saved_formats["torchscript"], renamed)
    assert p1.load_predictor(renamed).kind == "torchscript"


def test_torchvision_and_state_dict_agree(tmp_path):
    torch.manual_seed(0)
    predictor = p1.load_predictor("mobilenet_v3_small", num_classes=10)
    assert predictor.kind == "torchvision"
    eager = predictor.fn
    assert not eager.training                      # eval mode: dropout off, BN running statistics
    path = tmp_path / "weights.pth"
    torch.save(eager.state_dict(), path)
    loaded = p1.load_predictor(path, architecture="mobilenet_v3_small", num_classes=10)
    assert loaded.kind == "state_dict"
    x = torch.randn(2, *IMAGE)
    assert (loaded(x) - predictor(x)).abs().max().item() <= ATOL
    assert torch.equal(predictor(x), predictor(x))  # deterministic: eval mode, no dropout


def test_loaded_torchscript_is_in_eval_mode(saved_formats):
    module = p1.load_predictor(saved_formats["torchscript"]).fn
    assert not module.training


def test_missing_file_names_the_path(tmp_path):
    missing = tmp_path / "nope.onnx"
    with pytest.raises(FileNotFoundError, match="nope.onnx"):
        p1.load_predictor(missing)
    with pytest.raises(FileNotFoundError):
        p1.load_predictor(missing, kind="torchscript")


def test_unknown_kind_is_a_value_error(saved_formats):
    with pytest.raises(ValueError, match="kind"):
        p1.load_predictor(saved_formats["onnx"], kind="tflite")


def test_state_dict_needs_an_architecture(tmp_path):
    path = tmp_path / "weights.pth"
    torch.save(make_tiny_cnn().state_dict(), path)
    with pytest.raises(ValueError, match="architecture"):
        p1.load_predictor(path)


def test_unknown_architecture_is_a_value_error():
    with pytest.raises(ValueError):
        p1.load_predictor("resnet_nine_thousand", kind="torchvision")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU")
@pytest.mark.parametrize("kind", ["torchscript", "export", "onnx"])
def test_cuda_predictor_agrees_with_cpu(saved_formats, kind):
    x = torch.randn(3, *IMAGE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)     # ONNX without onnxruntime-gpu falls back
        predictor = p1.load_predictor(saved_formats[kind], device="cuda")
    expected = p1.load_predictor(saved_formats[kind])(x)
    out = predictor(x)
    if kind != "onnx":
        assert out.device.type == "cuda"
    # TF32 convolutions on Ampere and later: compare with a GPU-sized tolerance.
    assert (out.cpu() - expected).abs().max().item() <= 1e-2
