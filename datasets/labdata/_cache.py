"""Cache folder, content hashes and atomic writes shared by the data and model builders.

Everything this package generates (digit split files, synthetic clips, trained weights) lives
under one folder that git ignores: ``datasets/cache/`` in a source checkout, or the folder named
by the environment variable ``INFERENCE_LAB_CACHE``. Nothing here touches the network.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

__all__ = [
    "CACHE_ENV",
    "cache_dir",
    "content_hash",
    "file_sha256",
    "atomic_write_bytes",
    "atomic_write_json",
    "file_lock",
]

CACHE_ENV = "INFERENCE_LAB_CACHE"

# datasets/labdata/_cache.py -> datasets/cache
_DEFAULT_CACHE = Path(__file__).resolve().parent.parent / "cache"


def cache_dir(*parts: str, create: bool = True) -> Path:
    """The cache folder (or a sub-folder of it).

    Args:
        *parts: sub-folder names, e.g. ``cache_dir("models")``.
        create: make the folder if it does not exist.

    Returns:
        ``$INFERENCE_LAB_CACHE/<parts>`` when the variable is set, else ``datasets/cache/<parts>``.
    """
    root = os.environ.get(CACHE_ENV)
    path = Path(root).expanduser() if root else _DEFAULT_CACHE
    path = path.joinpath(*parts)
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def content_hash(*items: Any, length: int = 12) -> str:
    """Short SHA-256 hex digest of JSON-serialisable items and/or bytes.

    Dict keys are sorted, so the hash depends on content, not on insertion order.
    """
    h = hashlib.sha256()
    for item in items:
        if isinstance(item, (bytes, bytearray, memoryview)):
            h.update(b"B")
            h.update(bytes(item))
        else:
            h.update(b"J")
            h.update(json.dumps(item, sort_keys=True, separators=(",", ":")).encode())
    return h.hexdigest()[:length]


def file_sha256(path: str | os.PathLike) -> str:
    """Full SHA-256 hex digest of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either the old file or the whole new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; cache files are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Atomically write ``obj`` as indented, key-sorted JSON."""
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


@contextlib.contextmanager
def file_lock(path: str | os.PathLike) -> Iterator[None]:
    """Exclusive advisory lock on ``path`` (created if needed), so that two processes building
    the same cache entry do the work once."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
