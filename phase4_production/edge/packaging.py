"""What goes into a bundle besides your code and models (helpers, written in full).

``build_bundle`` (Task 4.8) writes the models, the manifest and your ``runtime.py``/``controller.py``; these
helpers give it the rest: the entry script, the support files every bundle carries, the pinned requirements
(no torch) and the README a person follows on a Jetson or a Raspberry Pi.
"""
from __future__ import annotations

import shutil
from importlib import metadata
from pathlib import Path
from typing import Iterable

__all__ = ["RUNNER_SCRIPT", "RUNTIME_PACKAGES", "copy_support_files", "pinned_requirements", "bundle_readme"]

#: The bundle's entry point: ``python runner.py [--variant NAME] < frames > answers``.
RUNNER_SCRIPT = '''"""Entry point of this edge bundle: python runner.py [--variant NAME] < frames > answers (see README.md)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runtime import main  # noqa: E402

raise SystemExit(main())
'''

#: What a bundle's process may import besides the standard library: pip name -> import name.
RUNTIME_PACKAGES = {"onnxruntime": "onnxruntime", "numpy": "numpy", "opencv-python-headless": "cv2"}


def copy_support_files(out: str | Path) -> list[Path]:
    """Copy ``protocol.py`` (the frame pipe and manifest) and ``proposals.py`` (region proposal) into ``out``.

    Returns:
        The two paths written.
    """
    from labdata import proposals

    from . import protocol

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for module in (protocol, proposals):
        dest = out / Path(module.__file__).name
        shutil.copyfile(module.__file__, dest)
        written.append(dest)
    return written


def pinned_requirements() -> str:
    """``requirements.txt`` for the device: the runtime packages at the versions installed here, no torch.

    On a Jetson, replace ``onnxruntime`` with NVIDIA's ``onnxruntime-gpu`` wheel for JetPack (see the README).
    """
    lines = ["# The edge bundle's runtime (no torch). Versions are the ones it was built and graded with."]
    for pip_name in RUNTIME_PACKAGES:
        lines.append(f"{pip_name}=={metadata.version(pip_name)}")
    return "\n".join(lines) + "\n"


def bundle_readme(variants: Iterable[str]) -> str:
    """The bundle's README.md: what is in it, how to run it on a Raspberry Pi and on a Jetson."""
    names = ", ".join(f"`{v}`" for v in variants)
    return f"""# Edge bundle: digit detector with adaptive inference

Everything the device needs is in this folder: the models (`models/`), the runtime (`runtime.py`,
`controller.py`, `proposals.py`, `protocol.py`), the entry point `runner.py` and `requirements.txt`.
It needs Python 3.10+ and no PyTorch. Variants, best quality first: {names} (see `bundle.json`).

## Run it

    python runner.py < frames.bin > answers.jsonl          # adaptive: the controller picks each frame's variant
    python runner.py --variant int8 < frames.bin > out.jsonl  # one variant, to measure it

Frames come in on stdin (the frame pipe of `protocol.py`: a 16-byte header and the BGR pixels per frame); one
JSON line per answered frame goes out on stdout. A camera process (GStreamer `fdsink`, or a few lines of OpenCV)
writes frames as they are captured.

## Raspberry Pi 4/5 (64-bit Raspberry Pi OS, ARM64)

    python3 -m venv ~/edge && ~/edge/bin/pip install -r requirements.txt   # ARM64 wheels exist for all three
    taskset -c 3 ~/edge/bin/python runner.py < frames.bin > answers.jsonl

ONNX Runtime's default CPU provider uses NEON; `int8` variants use its ARM INT8 kernels (dot-product
instructions on the Pi 5's Cortex-A76). Pin the process to one core and keep the others for capture and I/O.
Expect a Pi 5 core to be 2-3x slower than a desktop core: the controller steps down the ladder by itself.

## NVIDIA Jetson (JetPack 6, Orin)

Install NVIDIA's `onnxruntime-gpu` wheel for your JetPack instead of `onnxruntime` (from the Jetson Zoo),
then create the sessions with `providers=["TensorrtExecutionProvider", "CUDAExecutionProvider",
"CPUExecutionProvider"]` in `runtime.py`. The TensorRT provider builds an engine from the same ONNX files on
first run (cache it with `trt_engine_cache_enable`); the INT8 files carry their Q/DQ scales, which TensorRT uses
as they are. Set the power mode (`sudo nvpmodel -m 0`, `jetson_clocks`) before measuring.
"""
