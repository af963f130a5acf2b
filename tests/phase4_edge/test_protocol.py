"""The frame pipe and the bundle manifest (helpers every bundle carries): what a runner reads is what was sent,
and a bad manifest is refused with the reason."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest

from phase4_production.edge.protocol import (BUNDLE_FORMAT, ManifestError, encode_result, load_manifest, read_frame,
                                              write_frame)

pytestmark = pytest.mark.phase4_task8


def test_frames_round_trip_through_the_pipe():
    rng = np.random.default_rng(0)
    sent = [rng.integers(0, 256, (24, 32, 3), dtype=np.uint8) for _ in range(3)]
    buf = io.BytesIO()
    for i, f in enumerate(sent):
        write_frame(buf, 10 + i, f)
    buf.seek(0)
    for i, f in enumerate(sent):
        index, got = read_frame(buf)
        assert index == 10 + i and np.array_equal(got, f)
    assert read_frame(buf) is None


def test_a_truncated_frame_or_a_foreign_header_is_an_error():
    buf = io.BytesIO()
    write_frame(buf, 0, np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(EOFError, match="inside a message|after a header"):
        read_frame(io.BytesIO(buf.getvalue()[:-5]))
    with pytest.raises(ValueError, match="not a frame header"):
        read_frame(io.BytesIO(b"JUNK" + buf.getvalue()[4:]))


def test_an_answer_is_one_json_line():
    line = encode_result(3, "int8", np.array([[1, 2, 3, 4]]), np.array([7]), np.array([0.9]), 4.2)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    msg = json.loads(line)
    assert msg == {"index": 3, "variant": "int8", "boxes": [[1.0, 2.0, 3.0, 4.0]], "labels": [7], "scores": [0.9],
                   "compute_ms": 4.2}


def _bundle(tmp_path, variants, entry="runner.py"):
    (tmp_path / "runner.py").write_text("")
    (tmp_path / "m.onnx").write_bytes(b"x")
    (tmp_path / "bundle.json").write_text(json.dumps({"format": BUNDLE_FORMAT, "entry": entry, "variants": variants}))
    return tmp_path


def test_a_good_manifest_loads(tmp_path):
    m = load_manifest(_bundle(tmp_path, [{"name": "a", "model": "m.onnx"}, {"name": "b", "model": "m.onnx",
                                                                           "proposal_scale": 0.5, "relative_cost": 0.3}]))
    assert [v.name for v in m.variants] == ["a", "b"] and m.variant("b").proposal_scale == 0.5


@pytest.mark.parametrize("variants, why", [
    ([], "non-empty"),
    ([{"name": "a", "model": "/etc/passwd"}], "inside the bundle"),
    ([{"name": "a", "model": "../m.onnx"}], "inside the bundle"),
    ([{"name": "a", "model": "missing.onnx"}], "not a file"),
    ([{"name": "a", "model": "m.onnx"}, {"name": "a", "model": "m.onnx"}], "unique"),
    ([{"name": "a", "model": "m.onnx", "proposal_scale": 2}], "proposal_scale"),
    ([{"name": "a", "model": "m.onnx", "relative_cost": 0}], "relative_cost"),
])
def test_a_bad_manifest_is_refused_with_the_reason(tmp_path, variants, why):
    with pytest.raises(ManifestError, match=why):
        load_manifest(_bundle(tmp_path, variants))


def test_a_folder_without_a_manifest_says_so(tmp_path):
    with pytest.raises(ManifestError, match="does not exist"):
        load_manifest(tmp_path)
