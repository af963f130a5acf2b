"""The GPU server criterion's workload (``graders/phase4/server/frames_workload.py``), run on the CPU.

``p4.server.gpu_scale`` needs a GPU; what it is built from does not. Here the same code makes a smaller model
(ResNet-18 on 64 x 64 frames, ``KIND_CPU``): a repository Triton's schema accepts, a frame pool whose outputs tell
every request apart, and the grader's load client checking each answer the reference server gives, through the
TorchScript path of the workers.
"""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tritonclient.http", reason="the server extra: pip install -e '.[server]'")

from labimpl import implementation  # noqa: E402

from graders.phase4.server.frames_workload import (  # noqa: E402
    TOLERANCE, frame_pool, frames_models, frames_repository, model_ceiling)
from graders.phase4.server.harness import bad, child_pids, load  # noqa: E402
from graders.phase4.server.workload import read_config  # noqa: E402

pytestmark = pytest.mark.phase4_task14
_impl = implementation(4, "server")


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    root = tmp_path_factory.mktemp("frames")
    folder = frames_repository(root, name="frames", arch="resnet18", side=64, kind="KIND_CPU")
    return folder, frame_pool(folder, root / "pool.npz", requests=6, rows=2)


def test_the_repository_is_one_triton_accepts_and_the_pool_tells_requests_apart(small):
    folder, pool = small
    config = read_config(folder)  # the grader's own reading, against Triton's schema
    assert config.platform == "pytorch_libtorch" and (folder / "1" / "model.pt").is_file()
    assert [d for d in config.input[0].dims] == [64, 64, 3]
    with np.load(pool) as data:
        x, y = data["x"], data["y"]
    assert x.dtype == np.uint8 and x.shape == (6, 2, 64, 64, 3) and y.shape == (6, 2, 1000)
    # an answer routed to another frame is far outside the tolerance
    flat = y.reshape(12, 1000)
    gaps = [np.abs(flat[i] - flat[j]).max() / np.abs(flat[i]).max() for i in range(12) for j in range(12) if i != j]
    assert min(gaps) > 10 * TOLERANCE


def test_the_model_alone_is_timed_on_the_cpu_too(small):
    assert model_ceiling(small[0], "cpu", batch=4, repeats=3) > 0


@pytest.mark.slow
def test_the_reference_serves_the_frames_model_and_the_client_checks_every_answer(small, tmp_path):
    if not _impl.has_reference:
        pytest.skip("no reference solution in this copy (learner release)")
    from phase4_production.server.app import ServerThread

    folder, pool = small
    before = child_pids()
    server = _impl.module.ScaledServer(frames_models(folder)).start()
    try:
        assert len(child_pids(before)) == 2  # count: 2, on the CPU
        with ServerThread(server, max_in_flight=64, threads=2) as mine:
            kw = dict(streams=8, duration=2.0, warmup=0.5, inp="INPUT__0", out="OUTPUT__0", timeout_s=30.0)
            good = load(mine.url, folder.name, pool=pool, **kw)
            with np.load(pool) as data:  # the same requests with each answer key moved to the next request
                np.savez(tmp_path / "moved.npz", x=data["x"], y=np.roll(data["y"], 1, axis=0))
            moved = load(mine.url, folder.name, pool=tmp_path / "moved.npz", **kw)
    finally:
        server.close(drain=False, timeout_s=5.0)
    assert child_pids(before) == set()
    assert bad(good) == 0 and good["counts"]["ok"] > 0 and good["frames_per_s"] > 0, good["counts"]
    assert set(moved["counts"]) == {"wrong"}, moved["counts"]
