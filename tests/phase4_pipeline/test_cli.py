"""Task 4.6: ``python -m phase4_production.pipeline run ...`` as a person runs it, in a subprocess: every output
written and readable, exit status 0 / 1 / 2 for success, a failed stream and bad arguments.

The clips are tiny (20 frames of 160x120) and run with ``--no-live`` (as fast as decoded, nothing dropped), but
each run starts Python, torch and the classifier: about 5-10 s a run on two cores, so the file is marked slow.
It needs the whole pipeline (Tasks 4.1-4.5) as well as Task 4.6.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from graders.course import REPO_ROOT
from labdata.video import VideoConfig, generate_clip, read_video

from .impl import IMPL, needs_reference

pytestmark = [pytest.mark.phase4_task6, pytest.mark.slow]

FRAMES = 20
STAGES = ("decode", "preprocess", "inference", "track")


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("clips")
    out = {}
    for name, seed in (("cam1", 1), ("cam2", 2)):
        cfg = VideoConfig(frames=FRAMES, width=160, height=120, digit_size=24, fps=30, seed=seed)
        out[name] = generate_clip(cfg, folder, stem=name).video
    corrupt = folder / "clip.avi"
    corrupt.write_bytes(bytes(range(256)) * 16 + b"not a video")
    out["clip"] = corrupt
    return out


def run_cli(*args: str | Path, impl: str = IMPL, timeout: float = 180) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "phase4_production.pipeline", *map(str, args), "--impl", impl]
    return subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout)


def frames_of(path: Path) -> int:
    return len(read_video(path))


def test_run_writes_every_output(clips, tmp_path):
    out = tmp_path / "out"
    p = run_cli("run", clips["cam1"], clips["cam2"], "--out", out, "--no-live")
    assert p.returncode == 0, f"exit {p.returncode}\n{p.stdout}\n{p.stderr}"
    for name in ("cam1.annotated.avi", "cam2.annotated.avi", "events.jsonl", "summary.json", "stages.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, f"{name} was not written"
    for cam in ("cam1", "cam2"):
        video = read_video(out / f"{cam}.annotated.avi")
        assert video.shape == (FRAMES, 120, 160, 3), f"{cam}: {video.shape}"
    lines = (out / "events.jsonl").read_text().splitlines()
    assert lines, "the clips have digits entering: events.jsonl must not be empty"
    for line in lines:
        ev = json.loads(line)
        assert ev["type"] in ("enter", "leave", "cross") and ev["stream"] in ("cam1", "cam2")
        assert {"frame", "track_id", "label"} <= set(ev)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames_in"] == summary["frames_out"] == 2 * FRAMES
    assert [r["stage"] for r in summary["stage_summary"]] == list(STAGES)
    assert (out / "stages.png").read_bytes().startswith(b"\x89PNG")
    for word in ("cam1", "cam2", *STAGES):
        assert word in p.stdout, f"the printed tables must name {word}"


def test_a_missing_file_is_a_usage_error(clips, tmp_path):
    missing = tmp_path / "no_such_clip.avi"
    p = run_cli("run", clips["cam1"], missing, "--out", tmp_path / "out", timeout=60)
    assert p.returncode == 2, f"exit {p.returncode}\n{p.stdout}\n{p.stderr}"
    assert "no_such_clip.avi" in p.stderr, p.stderr
    assert not (tmp_path / "out" / "summary.json").exists(), "bad arguments: nothing must run"


def test_a_corrupt_clip_fails_its_stream_only(clips, tmp_path):
    out = tmp_path / "out"
    p = run_cli("run", clips["cam1"], clips["clip"], "--out", out, "--no-live")
    assert p.returncode == 1, f"exit {p.returncode}\n{p.stdout}\n{p.stderr}"
    assert "clip.avi" in p.stderr, f"the error must name the bad file:\n{p.stderr}"
    assert frames_of(out / "cam1.annotated.avi") == FRAMES, "the good stream's video must be complete"
    for line in (out / "events.jsonl").read_text().splitlines():
        assert json.loads(line)["stream"] == "cam1"
    summary = json.loads((out / "summary.json").read_text())
    streams = {s["name"]: s for s in summary["streams"]}
    assert streams["cam1"]["frames_out"] == FRAMES and streams["cam1"]["error"] is None
    assert streams["clip"]["error"], "the corrupt stream's error must be in summary.json"
    assert (out / "stages.png").is_file()


@needs_reference
def test_the_starter_says_what_is_not_implemented(clips, tmp_path):
    """In the course repository the starter is the stubs: the command must say which task to do, not crash."""
    p = run_cli("run", clips["cam1"], "--out", tmp_path / "out", "--no-live", impl="starter", timeout=120)
    assert p.returncode == 1, f"exit {p.returncode}\n{p.stdout}\n{p.stderr}"
    assert "not implemented yet: Task 4." in p.stderr, p.stderr
    assert "Traceback" not in p.stderr, p.stderr
