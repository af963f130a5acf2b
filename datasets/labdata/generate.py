"""``python -m labdata.generate`` (what ``make data`` runs): build the data caches, idempotently.

Writes, unless an identical file is already there:

* ``cache/digits/digits-<hash>.npz``: the 8x8 digits, labels, split indices, MEAN and STD;
* ``cache/video/clip-<hash>/clip.avi`` + ``clip.json``: the default synthetic clip
  (``VideoConfig()``: 90 frames, 15 fps, 320x240, 4 digits from the test split).

Prints what it reused and what it built. Takes about 2 s on 2 cores.
"""

from __future__ import annotations

import argparse
import time

from ._cache import cache_dir
from .digits import load_split, split_indices, write_split_cache
from .video import VideoConfig, cached_clip

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m labdata.generate",
                                     description="Build the digits split file and the default clip.")
    parser.add_argument("--force", action="store_true", help="rebuild even if cached")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    print(f"cache: {cache_dir()}")

    path, built = write_split_cache(force=args.force)
    sizes = {k: len(v) for k, v in split_indices().items()}
    for size, channels in ((32, 1), (64, 3)):  # the resolutions the catalog's models use
        x, _ = load_split("test", size=size, channels=channels)
        assert x.shape[1:] == (channels, size, size)
    print(f"digits   {'built' if built else 'reused':<7} {path}  splits {sizes}")

    config = VideoConfig()
    clip, built = cached_clip(config, force=args.force)
    print(f"video    {'built' if built else 'reused':<7} {clip.video} ({config.frames} frames, "
          f"{config.width}x{config.height}, {config.fps:g} fps, codec {config.codec}) + {clip.ground_truth.name}")
    print(f"data: done in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
