"""Task 4.13: the model repository, loaded the way Triton loads it, and the one you build for the digit classifier."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tritonclient.grpc", reason="the server extra: pip install -e '.[server]'")

from phase4_production.server.model_config import model_config_pb2, parse_config, read_config  # noqa: E402

from .impl import p4s  # noqa: E402
from .repository import CONFIG, affine_repository, expected  # noqa: E402

pytestmark = pytest.mark.phase4_task13


def _policy(text: str):
    return parse_config('name: "m"\n' + text)


@pytest.mark.parametrize("policy, available, chosen", [
    ("", [1, 3, 2], [3]),
    ("version_policy { latest { num_versions: 2 } }", [1, 3, 2], [2, 3]),
    ("version_policy { latest { num_versions: 5 } }", [4, 1], [1, 4]),
    ("version_policy { all { } }", [2, 1], [1, 2]),
    ("version_policy { specific { versions: [ 1, 3 ] } }", [1, 2, 3], [1, 3]),
])
def test_select_versions_follows_the_version_policy(policy, available, chosen):
    assert p4s.select_versions(_policy(policy), available) == chosen


@pytest.mark.parametrize("policy, available, says", [
    ("", [], "no version folder"),
    ("version_policy { specific { versions: [ 4 ] } }", [1, 2], "[4]"),
])
def test_select_versions_refuses_when_nothing_can_be_served(policy, available, says):
    with pytest.raises(p4s.RepositoryError, match=says.replace("[", r"\[").replace("]", r"\]")):
        p4s.select_versions(_policy(policy), available)


SIG = {"inputs": [("x", "FP32", [None, 4])], "outputs": [("y", "FP32", [None, 3])]}


@pytest.mark.parametrize("edit, says", [
    (lambda t: t, None),
    (lambda t: t.replace('name: "affine"', 'name: "other"'), "folder is 'affine'"),
    (lambda t: t.replace('name: "x"', 'name: "input"'), "inputs are ['input']"),
    (lambda t: t.replace("dims: [ 4 ]", "dims: [ 5 ]"), "dims [5]"),
    (lambda t: t.replace("dims: [ 4 ]", "dims: [ -1 ]"), None),
    (lambda t: t.replace("TYPE_FP32 dims: [ 3 ]", "TYPE_FP16 dims: [ 3 ]"), "FP16 in the config but FP32"),
    (lambda t: t.replace("max_batch_size: 8", "max_batch_size: 0"), "dims [4]"),
    (lambda t: t.replace("preferred_batch_size: [ 4, 8 ]", "preferred_batch_size: [ 4, 16 ]"), "[16]"),
])
def test_check_config_finds_what_does_not_describe_the_onnx_model(edit, says):
    problems = p4s.check_config("affine", parse_config(edit(CONFIG)), SIG)
    if says is None:
        assert problems == []
    else:
        assert any(says in p for p in problems), problems


def test_a_fixed_batch_dimension_cannot_be_batched():
    sig = {"inputs": [("x", "FP32", [1, 4])], "outputs": [("y", "FP32", [1, 3])]}
    assert any("symbolic" in p for p in p4s.check_config("affine", parse_config(CONFIG), sig))


def test_load_repository_loads_the_chosen_versions_and_names_a_broken_model(tmp_path):
    affine_repository(tmp_path / "good", versions=(1, 2))
    models = p4s.load_repository(tmp_path / "good")
    assert list(models) == ["affine"] and list(models["affine"]) == [2]
    x = np.ones((2, 4), np.float32)
    np.testing.assert_allclose(models["affine"][2].run({"x": x})["y"], expected(x), rtol=1e-5)
    affine_repository(tmp_path / "bad", config=CONFIG.replace("dims: [ 3 ]", "dims: [ 7 ]"))
    with pytest.raises(p4s.RepositoryError, match="model 'affine' version 1:.*dims"):
        p4s.load_repository(tmp_path / "bad")
    affine_repository(tmp_path / "typo", config=CONFIG.replace("max_batch_size", "max_batch"))
    with pytest.raises(p4s.RepositoryError, match="model 'affine'.*max_batch"):
        p4s.load_repository(tmp_path / "typo")
    with pytest.raises(p4s.RepositoryError, match="holds no model"):
        p4s.load_repository(tmp_path)


def test_build_repository_writes_a_repository_your_server_and_triton_can_load(tmp_path):
    folder = p4s.build_repository(tmp_path)
    config = read_config(folder)
    assert config.max_batch_size >= 8 and config.HasField("dynamic_batching")
    assert config.instance_group and config.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_CPU
    models = p4s.load_repository(tmp_path)
    model = models[folder.name][max(models[folder.name])]
    x = np.random.default_rng(0).random((config.max_batch_size, 1, 32, 32), dtype=np.float32)
    import torch

    with torch.inference_mode():
        want = p4s.classifier()(torch.from_numpy(x)).numpy()
    got = model.run({"images": x})["logits"]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_the_command_line_writes_the_repository_and_serves_it(tmp_path):
    """``python -m phase4_production.server repository`` then ``serve``: it answers on 127.0.0.1, Ctrl-C stops it."""
    import signal
    import subprocess
    import sys
    import time
    import urllib.error
    import urllib.request

    from phase4_production.server.cli import main
    from phase4_production.server.triton_peer import REPO_ROOT, free_port

    impl = p4s.__name__.rsplit(".", 1)[-1]
    assert main(["repository", "--out", str(tmp_path / "repo"), "--impl", impl]) == 0
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "phase4_production.server", "serve", "--repository",
                             str(tmp_path / "repo"), "--port", str(port), "--impl", impl],
                            cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline, meta = time.monotonic() + 60, None
        while meta is None and proc.poll() is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/models/digits", timeout=5) as r:
                    meta = r.read()
            except (urllib.error.URLError, OSError):
                time.sleep(0.2)
        assert meta is not None and b'"images"' in meta, f"exit code {proc.poll()}"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err[-2000:]
        assert f"127.0.0.1:{port}/v2" in out, out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
