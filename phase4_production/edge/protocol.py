"""How a bundle talks to the world: the frame pipe and the bundle manifest (helpers, written in full).

This file needs only the standard library and numpy: ``build_bundle`` copies it into every bundle, where torch
is not installed.

**The frame pipe.** The bundle's runner reads frames on its standard input and answers on its standard output,
as a camera process and an analytics process would on a device (GStreamer's ``fdsrc``/``appsink`` work the same
way). The grader is the camera: it releases frames on the clip's clock (30 FPS) whether the runner is ready or not.

- A frame is a 16-byte header, ``struct.pack("<4sIHHI", b"FRM1", index, height, width, 3)``, then
  ``height * width * 3`` bytes of uint8 BGR pixels, row-major. End of input = no more frames.
- The runner's first output line is ``{"ready": true, "variants": [...]}`` once its models are loaded and warm.
- Then one line per frame it answers: ``{"index": i, "variant": "<name>", "boxes": [[x1, y1, x2, y2], ...],
  "labels": [...], "scores": [...], "compute_ms": t}`` (boxes in frame pixels, x2/y2 exclusive). A frame the
  runner never answers counts as dropped; answering a frame twice is an error.

**The manifest.** ``bundle.json`` in the bundle's folder says what is in it (:func:`load_manifest` checks it)::

    {"format": "inference-lab-edge-bundle/1", "entry": "runner.py",
     "variants": [{"name": "fp32", "model": "models/classifier_fp32.onnx", "proposal_scale": 1.0,
                   "relative_cost": 1.0}, ...]}

Variants are listed best quality first; the first one is the original model's accuracy (the one the controller
returns to). ``relative_cost`` is the variant's time per frame over the first one's, measured when the bundle is
built (the controller's prior; the device's own figures replace it).
"""
from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

__all__ = ["BUNDLE_FORMAT", "MANIFEST", "FRAME_MAGIC", "HEADER", "Variant", "Manifest", "ManifestError",
           "load_manifest", "write_frame", "read_frame", "encode_result", "ready_line"]

BUNDLE_FORMAT = "inference-lab-edge-bundle/1"
MANIFEST = "bundle.json"
FRAME_MAGIC = b"FRM1"
#: magic, frame index, height, width, channels
HEADER = struct.Struct("<4sIHHI")


class ManifestError(ValueError):
    """A bundle's ``bundle.json`` is missing, malformed, or names a file the bundle does not hold."""


@dataclass(frozen=True)
class Variant:
    """One way the bundle can run a frame.

    Attributes:
        name: short unique name (``"fp32"``, ``"int8"``, ``"int8_half"``).
        model: path of the ONNX classifier, relative to the bundle folder.
        proposal_scale: the frame is resized by this factor (0 < s <= 1) before region proposal; boxes are
            scaled back to frame pixels.
        relative_cost: time per frame over the first variant's, as measured at build time (> 0).
    """

    name: str
    model: str
    proposal_scale: float = 1.0
    relative_cost: float = 1.0


@dataclass(frozen=True)
class Manifest:
    """A checked ``bundle.json``: ``entry`` (the runner script) and ``variants`` (best first)."""

    folder: Path
    entry: str
    variants: tuple[Variant, ...]
    raw: dict

    def variant(self, name: str) -> Variant:
        for v in self.variants:
            if v.name == name:
                return v
        raise KeyError(f"no variant {name!r} in {self.folder / MANIFEST} (it has {[v.name for v in self.variants]})")


def _inside(folder: Path, rel: str, what: str) -> Path:
    path = (folder / rel).resolve()
    if not isinstance(rel, str) or Path(rel).is_absolute() or folder.resolve() not in path.parents:
        raise ManifestError(f"{what} {rel!r} must be a relative path inside the bundle folder {folder}")
    if not path.is_file():
        raise ManifestError(f"{what} {rel!r} is not a file in the bundle folder {folder}")
    return path


def load_manifest(folder: str | Path) -> Manifest:
    """Read and check ``<folder>/bundle.json``.

    Raises:
        ManifestError: missing or malformed manifest, an unknown format, no variants, a duplicate name, a
            ``proposal_scale`` outside (0, 1], a ``relative_cost`` <= 0, or a file it names that is not in the folder.
    """
    folder = Path(folder)
    path = folder / MANIFEST
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise ManifestError(f"{path} does not exist: a bundle folder holds its manifest") from None
    except (OSError, ValueError) as e:
        raise ManifestError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(raw, dict) or raw.get("format") != BUNDLE_FORMAT:
        raise ManifestError(f"{path}: 'format' must be {BUNDLE_FORMAT!r}")
    entry = raw.get("entry", "runner.py")
    _inside(folder, entry, "entry")
    items = raw.get("variants")
    if not isinstance(items, list) or not items:
        raise ManifestError(f"{path}: 'variants' must be a non-empty list, best quality first")
    variants = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not isinstance(item.get("model"), str):
            raise ManifestError(f"{path}: variant {i} needs a 'name' and a 'model' (strings)")
        try:
            v = Variant(item["name"], item["model"], float(item.get("proposal_scale", 1.0)),
                        float(item.get("relative_cost", 1.0)))
        except (TypeError, ValueError):
            raise ManifestError(f"{path}: variant {item['name']!r} has a non-numeric scale or cost") from None
        if not 0 < v.proposal_scale <= 1:
            raise ManifestError(f"{path}: variant {v.name!r}: proposal_scale must be in (0, 1], got {v.proposal_scale}")
        if not v.relative_cost > 0:
            raise ManifestError(f"{path}: variant {v.name!r}: relative_cost must be > 0, got {v.relative_cost}")
        _inside(folder, v.model, f"variant {v.name!r}: model")
        variants.append(v)
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise ManifestError(f"{path}: variant names must be unique, got {names}")
    return Manifest(folder, entry, tuple(variants), raw)


def write_frame(stream: BinaryIO, index: int, frame: np.ndarray) -> None:
    """Send one uint8 [H, W, 3] frame down the pipe (header, then pixels) and flush."""
    frame = np.ascontiguousarray(frame, dtype=np.uint8)
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"expected a uint8 [H, W, 3] frame, got {frame.shape}")
    stream.write(HEADER.pack(FRAME_MAGIC, index, frame.shape[0], frame.shape[1], 3))
    stream.write(memoryview(frame).cast("B"))
    stream.flush()


def _read_exact(stream: BinaryIO, n: int) -> bytes | None:
    chunks, got = [], 0
    while got < n:
        chunk = stream.read(n - got)
        if not chunk:
            if got:
                raise EOFError(f"the frame pipe ended inside a message ({got} of {n} bytes)")
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def read_frame(stream: BinaryIO) -> tuple[int, np.ndarray] | None:
    """The next ``(index, frame)`` from the pipe (frame uint8 [H, W, 3]), or None at the end of input.

    Raises:
        ValueError: the bytes are not a frame header (wrong magic or channel count).
        EOFError: the pipe ended in the middle of a frame.
    """
    head = _read_exact(stream, HEADER.size)
    if head is None:
        return None
    magic, index, h, w, c = HEADER.unpack(head)
    if magic != FRAME_MAGIC or c != 3:
        raise ValueError(f"not a frame header: magic {magic!r}, {c} channels")
    body = _read_exact(stream, h * w * c)
    if body is None:
        raise EOFError("the frame pipe ended after a header")
    return index, np.frombuffer(body, np.uint8).reshape(h, w, c)


def encode_result(index: int, variant: str, boxes: Any, labels: Any, scores: Any, compute_ms: float) -> bytes:
    """One answer as a JSON line (bytes, newline-terminated); boxes [K, 4], labels [K], scores [K]."""
    return (json.dumps({"index": int(index), "variant": variant,
                        "boxes": np.asarray(boxes, np.float64).reshape(-1, 4).round(1).tolist(),
                        "labels": np.asarray(labels, np.int64).reshape(-1).tolist(),
                        "scores": np.asarray(scores, np.float64).reshape(-1).round(4).tolist(),
                        "compute_ms": round(float(compute_ms), 3)}) + "\n").encode()


def ready_line(variants: list[str]) -> bytes:
    """The runner's first line: models loaded and warm."""
    return (json.dumps({"ready": True, "variants": list(variants)}) + "\n").encode()
