"""Tasks 4.8 and 4.9: the bundle holds what a device needs, its runtime detects what the course detector does,
and it runs as its own process with the frame pipe (no torch imported there).
"""
from __future__ import annotations

import io
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from phase4_production.edge.models import original_classifier
from phase4_production.edge.protocol import load_manifest, write_frame

from .impl import p4e


@pytest.mark.phase4_task8
def test_the_bundle_holds_what_a_device_needs(bundle):
    for name in ("bundle.json", "runner.py", "runtime.py", "controller.py", "protocol.py", "proposals.py",
                 "requirements.txt", "README.md"):
        assert (bundle / name).is_file(), name
    req = [ln for ln in (bundle / "requirements.txt").read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    assert not [ln for ln in req if "torch" in ln] and any(ln.startswith("onnxruntime==") for ln in req)
    readme = (bundle / "README.md").read_text()
    assert "Jetson" in readme and "Raspberry Pi" in readme
    manifest = load_manifest(bundle)
    assert len(manifest.variants) >= 2 and manifest.variants[0].relative_cost == 1.0
    assert all(v.relative_cost < 1.0 for v in manifest.variants[1:])


@pytest.mark.phase4_task8
def test_the_first_variant_detects_what_the_course_detector_does(bundle, frames):
    from labdata.detector import DigitsDetector

    runner = p4e.EdgeRunner(bundle)
    det = DigitsDetector(original_classifier())
    for frame in frames[:8]:
        got = runner.detect(frame, runner.variants[0])
        assert got["boxes"].dtype == np.float32 and got["labels"].dtype == np.int64 and got["scores"].dtype == np.float32
        with torch.inference_mode():
            want = det.detect_bgr(frame)
        assert np.allclose(got["boxes"], want["boxes"].numpy(), atol=1e-3)
        assert np.array_equal(got["labels"], want["labels"].numpy())
        assert np.allclose(got["scores"], want["scores"].numpy(), atol=1e-3)


@pytest.mark.phase4_task8
def test_a_half_size_variant_gives_boxes_in_frame_pixels(bundle, frames):
    runner = p4e.EdgeRunner(bundle)
    half = [v.name for v in runner.manifest.variants if v.proposal_scale < 1]
    if not half:
        pytest.skip("this bundle has no reduced-resolution variant")
    full = runner.detect(frames[5], runner.variants[0])["boxes"]
    small = runner.detect(frames[5], half[0])["boxes"]
    assert len(small) and small.max() > 0.6 * full.max()


@pytest.mark.phase4_task9
def test_serve_answers_or_drops_every_frame_and_never_answers_twice(bundle, frames):
    runner = p4e.EdgeRunner(bundle)
    pipe = io.BytesIO()
    for i, f in enumerate(frames):
        write_frame(pipe, i, f)
    pipe.seek(0)
    out = io.BytesIO()
    counts = runner.serve(pipe, out, variant=runner.variants[-1])
    answers = [json.loads(line) for line in out.getvalue().splitlines()]
    indexes = [a["index"] for a in answers]
    assert counts["answered"] + counts["dropped"] == len(frames)
    assert len(indexes) == counts["answered"] >= 2 and indexes == sorted(set(indexes))
    assert indexes[-1] == len(frames) - 1, "the newest frame is always answered"
    assert {a["variant"] for a in answers} == {runner.variants[-1]}


@pytest.mark.phase4_task9
def test_serve_needs_a_controller_or_a_variant(bundle):
    runner = p4e.EdgeRunner(bundle)
    with pytest.raises(ValueError):
        runner.serve(io.BytesIO(), io.BytesIO())


@pytest.mark.phase4_task9
def test_the_runner_runs_as_its_own_process_without_torch(bundle, frames):
    """The bundle's own entry point, with torch made unimportable as on a device."""
    pipe = io.BytesIO()
    for i, f in enumerate(frames[:6]):
        write_frame(pipe, i, f)
    boot = ("import sys, runpy\nsys.modules['torch'] = None\nsys.argv = ['runner.py', '--variant', sys.argv[1]]\n"
            "runpy.run_path('runner.py', run_name='__main__')\n")
    variant = load_manifest(bundle).variants[1].name
    proc = subprocess.run([sys.executable, "-I", "-c", boot, variant], cwd=bundle, input=pipe.getvalue(),
                          capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()[-800:]
    lines = [json.loads(x) for x in proc.stdout.splitlines()]
    assert lines[0]["ready"] is True and [v for v in lines[0]["variants"]][1] == variant
    assert 1 <= len(lines) - 1 <= 6 and all(a["variant"] == variant for a in lines[1:])
