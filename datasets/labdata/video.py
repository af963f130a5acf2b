"""Synthetic video with ground truth: digits from the test split moving over a noisy background.

A clip is fully determined by its :class:`VideoConfig` (seed included). Each object is one test
digit scaled to ``digit_size`` pixels; objects bounce off the frame edges, some enter from outside
and leave again, two cross paths (occlusion), and the global brightness drifts and steps.
The clip is written with OpenCV as a real video file, next to a JSON ground-truth file:

.. code-block:: json

    {"width": 320, "height": 240, "fps": 15, "frame_count": 90, "config": {...},
     "frames": [{"index": 0, "objects": [{"track_id": 0, "label": 7,
                                           "box": [x1, y1, x2, y2], "visible": 0.93}]}]}

Boxes are pixel coordinates of the digit's ink (alpha > ``INK_THRESHOLD``), x2/y2 exclusive,
clipped to the frame; ``visible`` is the fraction of that ink that is inside the frame and not
covered by an object drawn later. Objects with nothing visible are left out of a frame.

Codecs: on the course machines OpenCV (FFmpeg backend) writes and reads back ``"MJPG"`` in
``.avi`` (default: intra-frame JPEG, no inter-frame drift, exact frame count) and ``"mp4v"``
(MPEG-4 part 2) in ``.mp4``. H.264 (``avc1``) is not available in opencv-python-headless's
FFmpeg build, so it is not offered.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ._cache import atomic_write_json, cache_dir, content_hash, file_lock
from .digits import data_fingerprint, load_split

__all__ = [
    "CODECS",
    "INK_THRESHOLD",
    "VideoConfig",
    "ClipPaths",
    "VideoDecodeError",
    "generate_clip",
    "cached_clip",
    "render_frames",
    "read_ground_truth",
    "decode_frames",
    "read_video",
]

CODECS = {"MJPG": ".avi", "mp4v": ".mp4"}  # fourcc -> container that round-trips here
INK_THRESHOLD = 0.25  # alpha above which a digit pixel counts as ink for boxes and visibility
GENERATOR_VERSION = 1  # bump when the rendering changes, so cached clips are rebuilt


class VideoDecodeError(RuntimeError):
    """A video file exists but cannot be decoded (corrupt, truncated or unsupported codec)."""


@dataclass(frozen=True)
class VideoConfig:
    """Everything that determines a clip.

    Attributes:
        frames: number of frames (>= 1).
        fps: frames per second written into the file (> 0).
        width, height: frame size in pixels (>= 32 each; even, as codecs prefer).
        num_objects: digits in the clip (>= 0). With ``enter_leave`` half of them (rounded down)
            start outside the frame, enter at a left/right edge, cross it in 50-65 % of the clip
            (as fast as that takes, regardless of ``max_speed``) and leave; the others bounce
            inside it.
        digit_size: side of a digit's square tile in pixels (8..min(width, height)//2).
        occlusion: True: objects move freely in 2-D and objects 0 and 1 are steered to overlap
            half-way through. False: each object keeps to its own horizontal lane, so no two
            objects ever overlap (needs ``height >= num_objects * digit_size``).
        brightness_changes: True: global gain drifts (sine, +-30 %) and drops by 40 % for the
            last third of the clip. False: constant gain 1.
        noise_std: standard deviation of per-pixel Gaussian noise, in units of full scale (0..1).
        seed: seed for digit choice, trajectories and noise.
        codec: a key of :data:`CODECS`.
        enter_leave: see ``num_objects``.
        max_speed: largest speed of a bouncing object in pixels per frame.
    """

    frames: int = 90
    fps: float = 15.0
    width: int = 320
    height: int = 240
    num_objects: int = 4
    digit_size: int = 32
    occlusion: bool = True
    brightness_changes: bool = True
    noise_std: float = 0.03
    seed: int = 0
    codec: str = "MJPG"
    enter_leave: bool = True
    max_speed: float = 4.0

    def __post_init__(self) -> None:
        if not isinstance(self.frames, int) or self.frames < 1:
            raise ValueError(f"frames must be an int >= 1, got {self.frames!r}")
        if not self.fps > 0:
            raise ValueError(f"fps must be > 0, got {self.fps!r}")
        for name in ("width", "height"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 32 or v % 2:
                raise ValueError(f"{name} must be an even int >= 32, got {v!r}")
        if not isinstance(self.num_objects, int) or self.num_objects < 0:
            raise ValueError(f"num_objects must be an int >= 0, got {self.num_objects!r}")
        biggest = min(self.width, self.height) // 2
        if not isinstance(self.digit_size, int) or not 8 <= self.digit_size <= biggest:
            raise ValueError(f"digit_size must be an int in 8..{biggest}, got {self.digit_size!r}")
        if not self.occlusion and self.num_objects * self.digit_size > self.height:
            raise ValueError(f"occlusion=False puts each object in its own lane: {self.num_objects} "
                             f"objects x {self.digit_size} px do not fit in height {self.height}")
        if not 0 <= self.noise_std <= 0.5:
            raise ValueError(f"noise_std must be in 0..0.5 (full scale = 1), got {self.noise_std!r}")
        if self.codec not in CODECS:
            raise ValueError(f"codec must be one of {sorted(CODECS)}, got {self.codec!r}")
        if not self.max_speed > 0:
            raise ValueError(f"max_speed must be > 0, got {self.max_speed!r}")

    @property
    def extension(self) -> str:
        return CODECS[self.codec]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def fingerprint(self) -> str:
        """Hash of the config, the generator version and the digits data."""
        return content_hash(self.to_dict(), GENERATOR_VERSION, data_fingerprint())


@dataclass(frozen=True)
class ClipPaths:
    """Where a generated clip lives: ``video`` (the encoded file) and ``ground_truth`` (JSON)."""

    video: Path
    ground_truth: Path


# ---------------------------------------------------------------------------------------------
# Trajectories
# ---------------------------------------------------------------------------------------------


def _bounce_path(pos, vel, steps: int, lo, hi) -> np.ndarray:
    """Positions [steps, 2] of a point moving at ``vel`` and reflecting off the box lo..hi."""
    p, v = np.array(pos, float), np.array(vel, float)
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    out = np.empty((steps, 2))
    for t in range(steps):
        out[t] = p
        p = p + v
        for k in range(2):
            if hi[k] <= lo[k]:
                p[k] = lo[k]
                continue
            if p[k] < lo[k]:
                p[k], v[k] = 2 * lo[k] - p[k], -v[k]
            elif p[k] > hi[k]:
                p[k], v[k] = 2 * hi[k] - p[k], -v[k]
    return out


def _trajectories(cfg: VideoConfig, rng: np.random.Generator) -> list[np.ndarray]:
    """Top-left tile positions [frames, 2] (x, y) for each object; may lie outside the frame."""
    n, s, T = cfg.num_objects, cfg.digit_size, cfg.frames
    n_transient = n // 2 if cfg.enter_leave else 0
    paths: list[np.ndarray] = []
    lane_h = cfg.height / max(n, 1)
    for i in range(n):
        speed = rng.uniform(0.4, 1.0) * cfg.max_speed
        angle = rng.uniform(0, 2 * math.pi)
        if cfg.occlusion:
            lo, hi = (0.0, 0.0), (cfg.width - s, cfg.height - s)
            vel = (speed * math.cos(angle), speed * math.sin(angle))
        else:  # own lane: y confined to [i*lane_h, (i+1)*lane_h - s]
            lo, hi = (0.0, i * lane_h), (cfg.width - s, (i + 1) * lane_h - s)
            vel = (speed * math.copysign(max(abs(math.cos(angle)), 0.5), math.cos(angle)),
                   0.3 * speed * math.sin(angle))
        if i >= n - n_transient:  # enters at the left or right edge, crosses, leaves
            direction = 1.0 if rng.random() < 0.5 else -1.0
            duration = rng.uniform(0.5, 0.65) * T  # frames from entering to having left
            vx = direction * (cfg.width + s) / max(duration, 1.0)
            y0 = rng.uniform(lo[1], hi[1])
            t_enter = int(rng.integers(0, max(int(T - duration), 1)))
            x_enter = -s if direction > 0 else cfg.width
            t = np.arange(T) - t_enter
            path = np.stack([x_enter + vx * t, np.full(T, y0)], axis=1)
        elif cfg.occlusion and i == 1 and n_transient < n - 1:
            # steer object 1 through object 0's position at mid-clip (bouncing is time-reversible)
            mid = T // 2
            meet = paths[0][mid]
            fwd = _bounce_path(meet, vel, T - mid, lo, hi)
            back = _bounce_path(meet, (-vel[0], -vel[1]), mid + 1, lo, hi)[::-1]
            path = np.concatenate([back[:-1], fwd])
        else:
            start = (rng.uniform(lo[0], hi[0]), rng.uniform(lo[1], hi[1]))
            path = _bounce_path(start, vel, T, lo, hi)
        paths.append(path)
    return paths


# ---------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------


def render_frames(cfg: VideoConfig) -> Iterator[tuple[np.ndarray, list[dict[str, Any]]]]:
    """Render the clip in memory, one frame at a time.

    Yields:
        frame: uint8 [height, width, 3], BGR (grey replicated), as OpenCV writes it.
        objects: the frame's ground truth (see the module docstring).
    """
    rng = np.random.default_rng(cfg.seed)
    s, W, H = cfg.digit_size, cfg.width, cfg.height
    tiles_all, labels_all = load_split("test", size=s, channels=1, normalize=False)
    pick = rng.choice(len(labels_all), size=cfg.num_objects, replace=False) if cfg.num_objects else []
    tiles = [tiles_all[j, 0].numpy().astype(np.float32) for j in pick]  # [s, s] alpha 0..1
    labels = [int(labels_all[j]) for j in pick]
    inks = [rng.uniform(0.75, 0.95) for _ in pick]
    paths = _trajectories(cfg, rng)

    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    background = 0.12 + 0.08 * (xx / W) + 0.05 * np.sin(2 * math.pi * yy / H)  # [H, W]
    for t in range(cfg.frames):
        canvas = background.copy()
        owner = np.full((H, W), -1, np.int32)  # which object's ink is on top at each pixel
        ink_total = []
        for i, (tile, ink) in enumerate(zip(tiles, inks)):
            x0, y0 = (int(round(v)) for v in paths[i][t])
            ink_total.append(int((tile > INK_THRESHOLD).sum()))
            fx0, fy0, fx1, fy1 = max(x0, 0), max(y0, 0), min(x0 + s, W), min(y0 + s, H)
            if fx0 >= fx1 or fy0 >= fy1:
                continue
            a = tile[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0]
            region = canvas[fy0:fy1, fx0:fx1]
            canvas[fy0:fy1, fx0:fx1] = region * (1 - a) + ink * a
            owner[fy0:fy1, fx0:fx1][a > INK_THRESHOLD] = i
        objects = []
        for i, tile in enumerate(tiles):
            x0, y0 = (int(round(v)) for v in paths[i][t])
            ys, xs = np.nonzero(tile > INK_THRESHOLD)
            gx, gy = xs + x0, ys + y0
            inside = (gx >= 0) & (gx < W) & (gy >= 0) & (gy < H)
            if not inside.any():
                continue
            visible = int((owner[gy[inside], gx[inside]] == i).sum())
            if visible == 0:
                continue
            box = [int(gx[inside].min()), int(gy[inside].min()),
                   int(gx[inside].max()) + 1, int(gy[inside].max()) + 1]
            objects.append({"track_id": i, "label": labels[i], "box": box,
                            "visible": round(visible / max(ink_total[i], 1), 4)})
        gain = 1.0
        if cfg.brightness_changes:
            gain = 1.0 + 0.3 * math.sin(2 * math.pi * t / max(cfg.frames, 2))
            if t >= 2 * cfg.frames // 3:
                gain *= 0.6
        frame = canvas * gain + rng.normal(0.0, cfg.noise_std, size=(H, W)).astype(np.float32)
        grey = np.clip(frame * 255.0 + 0.5, 0, 255).astype(np.uint8)
        yield np.repeat(grey[:, :, None], 3, axis=2), objects


def generate_clip(config: VideoConfig, out_dir: str | Path, *, stem: str = "clip") -> ClipPaths:
    """Render ``config`` and write ``<out_dir>/<stem>.<avi|mp4>`` plus ``<stem>.json``.

    The file is decoded once after writing; a frame count or size that disagrees with the
    ground truth raises :class:`VideoDecodeError`.

    Returns:
        The two paths.
    """
    import cv2

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    video = out_dir / f"{stem}{config.extension}"
    gt_path = out_dir / f"{stem}.json"
    tmp = out_dir / f".{stem}.partial{config.extension}"
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*config.codec), float(config.fps),
                             (config.width, config.height))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write codec {config.codec!r} to {tmp}")
    frames_gt = []
    try:
        for t, (frame, objects) in enumerate(render_frames(config)):
            writer.write(frame)
            frames_gt.append({"index": t, "objects": objects})
    finally:
        writer.release()
    n = sum(1 for _ in decode_frames(tmp, expected_size=(config.width, config.height)))
    if n != config.frames:
        raise VideoDecodeError(f"{tmp}: wrote {config.frames} frames, decoded {n}")
    tmp.replace(video)
    atomic_write_json(gt_path, {
        "width": config.width, "height": config.height, "fps": config.fps,
        "frame_count": config.frames, "video": video.name, "config": config.to_dict(),
        "fingerprint": config.fingerprint(), "frames": frames_gt,
    })
    return ClipPaths(video=video, ground_truth=gt_path)


def cached_clip(config: VideoConfig | None = None, *, force: bool = False) -> tuple[ClipPaths, bool]:
    """The clip for ``config`` (default: ``VideoConfig()``) in ``cache/video/``, generated if missing.

    Args:
        force: regenerate even if the clip exists.

    Returns:
        (paths, built): built is False when an existing clip with the same fingerprint was reused.
    """
    config = config or VideoConfig()
    folder = cache_dir("video") / f"clip-{config.fingerprint()}"
    paths = ClipPaths(folder / f"clip{config.extension}", folder / "clip.json")
    with file_lock(cache_dir("video") / ".lock"):
        if not force and paths.video.exists() and paths.ground_truth.exists():
            return paths, False
        return generate_clip(config, folder), True


# ---------------------------------------------------------------------------------------------
# Reading back
# ---------------------------------------------------------------------------------------------


def read_ground_truth(path: str | Path) -> dict[str, Any]:
    """Load a ground-truth JSON written by :func:`generate_clip` (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ground-truth file not found: {path}")
    gt = json.loads(path.read_text())
    missing = {"width", "height", "fps", "frame_count", "frames"} - set(gt)
    if missing:
        raise ValueError(f"{path} is not a clip ground-truth file (missing {sorted(missing)})")
    return gt


def decode_frames(
    path: str | Path, *, expected_size: tuple[int, int] | None = None
) -> Iterator[np.ndarray]:
    """Decode a video file frame by frame with OpenCV.

    Args:
        path: the video file.
        expected_size: (width, height) every frame must have, or None.

    Yields:
        uint8 [height, width, 3] BGR frames.

    Raises:
        FileNotFoundError: no such file.
        VideoDecodeError: the file cannot be opened, holds no frames, or a frame has the wrong size.
    """
    import cv2

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"video file not found: {path}")
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise VideoDecodeError(f"cannot open {path} as a video (corrupt or unsupported codec)")
        n = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            if frame is None or frame.ndim != 3:
                raise VideoDecodeError(f"{path}: frame {n} decoded to an invalid array")
            if expected_size is not None and (frame.shape[1], frame.shape[0]) != tuple(expected_size):
                raise VideoDecodeError(f"{path}: frame {n} is {frame.shape[1]}x{frame.shape[0]}, "
                                       f"expected {expected_size[0]}x{expected_size[1]}")
            n += 1
            yield frame
        if n == 0:
            raise VideoDecodeError(f"{path}: no frames could be decoded (corrupt or empty file)")
    finally:
        cap.release()


def read_video(path: str | Path) -> np.ndarray:
    """All frames of a video as one uint8 array [T, height, width, 3] (BGR)."""
    return np.stack(list(decode_frames(path)))
