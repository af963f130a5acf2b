"""Where frames come from: a video file, or frames in memory, released as fast as read or at the clip's rate.

Helpers, written in full. A *live* source behaves like a camera: frame ``i`` exists at ``start + i / fps``
whether or not anyone is ready for it, so :attr:`SourceFrame.release_t` is that scheduled time, and a
pipeline that falls behind sees the latency grow (and must drop frames to catch up). A non-live source
releases each frame as soon as it is decoded (``release_t`` = the moment it was read): batch jobs over files.

Iterating a source decodes: the time it takes is the pipeline's ``decode`` stage. Errors (a missing file,
a corrupt or truncated video, a decoder that fails mid-way) are raised from the iteration, at the frame where
they happen, as :class:`labdata.video.VideoDecodeError` or ``FileNotFoundError``.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from labdata.video import VideoDecodeError, decode_frames

from .types import SourceFrame

__all__ = ["Source", "VideoFileSource", "ArraySource", "VideoDecodeError"]


class Source:
    """A stream of frames (subclass it and implement :meth:`_images`).

    Args:
        name: the stream's name, unique within a run.
        fps: frames per second of the stream (> 0): the release rate when ``live``.
        live: True: release frame ``i`` at ``start + i / fps`` (a camera); False: as fast as decoded (a file job).
        loops: play the frames this many times in a row (>= 1); indices keep counting up (a long soak from a
            short clip).
        start_delay_s: a live source's first frame is released this long after iteration starts (>= 0).
    """

    def __init__(self, name: str, *, fps: float, live: bool = True, loops: int = 1, start_delay_s: float = 0.0):
        if not name or not isinstance(name, str):
            raise ValueError(f"a source needs a non-empty name, got {name!r}")
        if not fps > 0 or int(loops) < 1 or start_delay_s < 0:
            raise ValueError(f"fps must be > 0, loops >= 1 and start_delay_s >= 0; got {fps}, {loops}, {start_delay_s}")
        self.name, self.fps, self.live = name, float(fps), bool(live)
        self.loops, self.start_delay_s = int(loops), float(start_delay_s)

    def _images(self) -> Iterator[np.ndarray]:
        """Decode the frames once, in order: uint8 [H, W, 3] BGR each."""
        raise NotImplementedError

    def __iter__(self) -> Iterator[SourceFrame]:
        start = time.perf_counter() + self.start_delay_s
        index = 0
        for _ in range(self.loops):
            images = self._images()
            while True:
                t0 = time.perf_counter()
                image = next(images, None)
                decode_s = time.perf_counter() - t0
                if image is None:
                    break
                if self.live:
                    release = start + index / self.fps
                    wait = release - time.perf_counter()
                    if wait > 0:
                        time.sleep(wait)
                else:
                    release = time.perf_counter()
                yield SourceFrame(self.name, index, release, image, decode_s)
                index += 1

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, fps={self.fps:g}, live={self.live})"


class VideoFileSource(Source):
    """Frames decoded from a video file with OpenCV.

    Args:
        path: the video file (``.avi``/``.mp4``).
        name: default: the file's stem.
        fps: default: the rate written in the file (30 when the file does not say).
        live, loops, start_delay_s: see :class:`Source`.
    """

    def __init__(self, path: str | Path, *, name: str | None = None, fps: float | None = None, live: bool = True,
                 loops: int = 1, start_delay_s: float = 0.0):
        self.path = Path(path)
        if fps is None:
            fps = _file_fps(self.path)
        super().__init__(name or self.path.stem, fps=fps, live=live, loops=loops, start_delay_s=start_delay_s)

    def _images(self) -> Iterator[np.ndarray]:
        yield from decode_frames(self.path)  # FileNotFoundError / VideoDecodeError as labdata.video raises them


class ArraySource(Source):
    """Frames already in memory (tests, notebooks, a synthetic load).

    Args:
        frames: uint8 [T, H, W, 3] BGR, or a sequence of [H, W, 3] arrays.
        name, fps, live, loops, start_delay_s: see :class:`Source`.
    """

    def __init__(self, frames: np.ndarray | Sequence[np.ndarray], *, name: str, fps: float = 30.0, live: bool = True,
                 loops: int = 1, start_delay_s: float = 0.0):
        super().__init__(name, fps=fps, live=live, loops=loops, start_delay_s=start_delay_s)
        self.frames = frames
        for i, f in enumerate(frames):
            if not isinstance(f, np.ndarray) or f.dtype != np.uint8 or f.ndim != 3 or f.shape[2] != 3:
                raise ValueError(f"frame {i} of {name!r} is not a uint8 [H, W, 3] array")

    def _images(self) -> Iterator[np.ndarray]:
        yield from self.frames


def _file_fps(path: Path) -> float:
    """The frame rate written in a video file; 30 when the file cannot be opened or does not say."""
    import cv2

    if not path.is_file():
        return 30.0
    cap = cv2.VideoCapture(str(path))
    try:
        fps = float(cap.get(cv2.CAP_PROP_FPS)) if cap.isOpened() else 0.0
    finally:
        cap.release()
    return fps if fps > 0 else 30.0
