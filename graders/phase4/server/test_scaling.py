"""Task 4.14: the learner's ScaledServer (worker processes, dynamic batching, a supervisor, a drain) under load.

Both criteria serve the grader's own models (``workload.py``), loaded by the grader, behind the part's HTTP side
(``ServerThread`` from the learner's exports); the load comes from ``loadclient.py`` in its own process: 100+
concurrent streams of binary-tensor requests built by ``tritonclient``, every answer checked against the model.

- ``scale``: the ``dense`` model (a 64 MiB weight matrix: one row costs a matrix-vector product, 32 rows little
  more) with ``instance_group { count: 2 }`` and ``dynamic_batching``, served by real Triton (``triton_peer``,
  configured from the same ``config.pbtxt``) and by the learner's server, the same client and load, alternating in
  one run. Measured: the learner's frames/s over real Triton's (best round of each). Every request must be answered
  right; a server that runs requests one by one cannot keep up with one that batches.
- ``faults``: the ``affine`` model with two instances under 40 streams; the grader SIGKILLs one of the learner's
  worker processes mid-run (found as children of this process, not as the learner reports them). Measured:
  requests not answered right, against the seed's 99.9 % availability: a 503 with ``Retry-After`` retried once
  counts as answered when the retry is; a request lost (no reply) or wrong never does. The worker must be back
  within 10 s. Then, under load again, the server is stopped: every request it admitted is answered (200), the
  others refused cleanly (503 or a refused connection), none dropped.
- ``gpu_scale`` (profile ``cuda`` only): the seed's "100+ streams, 1000+ FPS on GPU". The grader's ResNet-50 on
  ``UINT8`` frames (``frames_workload.py``: TorchScript, ``instance_group { count: 2 kind: KIND_GPU }``, dynamic
  batching up to 32) behind the learner's server, 100 streams of 4-frame requests, every answer checked against
  the grader's own FP32 outputs. Measured: frames/s answered right (best round), against the seed's figure; the
  model's own frames/s on this GPU at batch 32 is measured first and reported beside it. A GPU that cannot run
  the model alone at the pass mark skips the criterion with that figure, rather than fail a server for its card.
"""
from __future__ import annotations

import os
import signal
import tempfile
import threading
import time
from pathlib import Path

import pytest

from ...plugin import criterion
from .frames_workload import frame_pool, frames_models, frames_repository, model_ceiling
from .harness import bad, child_pids, load, shutdown, start_affine_pair, start_scaled
from .workload import DENSE_WIDTH, dense_repository, grader_models, trusted_peer

STREAMS = 100
#: The availability the seed asks for.
AVAILABILITY = 0.999
RESTART_BOUND_S = 10.0
#: Frames per request in the GPU criterion: a camera batch, as a video service sends them.
GPU_ROWS = 4


@criterion("p4.server.scale")
def test_scale(grade, learner, quick):
    peer_module = trusted_peer()
    why = peer_module.triton_available()
    if why:
        pytest.skip(why)
    ServerThread = learner.attr("ServerThread")
    root = Path(tempfile.mkdtemp(prefix="p4-server-scale-"))
    folder = dense_repository(root)
    rows, duration, rounds = 2, (3.0 if quick else 5.0), (1 if quick else 2)
    kw = dict(streams=STREAMS, duration=duration, rows=rows, feature=str(DENSE_WIDTH), out_dims="16", expect="dense")
    before = child_pids()
    server = start_scaled(learner, grader_models(folder, [1]), "the dense model")
    results: dict[str, list[dict]] = {"real Triton": [], "your server": []}
    try:
        with peer_module.TritonPeer(folder) as peer, ServerThread(server, max_in_flight=4 * STREAMS,
                                                                  threads=2) as mine:
            for _ in range(rounds):
                results["real Triton"].append(load(peer.http_url, "dense", **kw))
                results["your server"].append(load(mine.url, "dense", **kw))
    except peer_module.PeerError as e:
        pytest.skip(f"real Triton could not start here: {e}")
    finally:
        shutdown(learner, server, before)
    best = {k: max(v, key=lambda r: r["frames_per_s"]) for k, v in results.items()}
    errors = {k: sum(bad(r) for r in v) for k, v in results.items()}
    details = {"streams": STREAMS, "rows_per_request": rows, "rounds": rounds,
               **{f"{k} {m}": [r[m] for r in v] for k, v in results.items()
                  for m in ("frames_per_s", "p50_ms", "p99_ms", "counts")}}
    if errors["your server"]:
        first = next(r["counts"] for r in results["your server"] if bad(r))
        grade.fail(f"{errors['your server']} request(s) under {STREAMS} streams not answered right: {first}",
                   details=details, value=0.0)
        return
    if not best["real Triton"]["frames_per_s"]:
        pytest.skip(f"real Triton answered nothing right here ({best['real Triton']['counts']}): no peer to compare")
    ratio = best["your server"]["frames_per_s"] / best["real Triton"]["frames_per_s"]
    mine_, peer_ = best["your server"], best["real Triton"]
    grade.record(ratio, details=details, message=(
        f"{STREAMS} streams x {rows} frames: your server {mine_['frames_per_s']:.0f} frames/s (p50 "
        f"{mine_['p50_ms']:.0f} ms, p99 {mine_['p99_ms']:.0f} ms), real Triton {peer_['frames_per_s']:.0f} frames/s "
        f"(p50 {peer_['p50_ms']:.0f} ms, p99 {peer_['p99_ms']:.0f} ms): {ratio:.2f}x"))


@criterion("p4.server.faults")
def test_faults(grade, learner, quick):
    ServerThread = learner.attr("ServerThread")
    before, server = start_affine_pair(learner, "p4-server-faults-")
    problems: list[str] = []
    details: dict = {}
    kw = dict(rows=2, feature="4", out_dims="3", expect="affine:1", streams=40)
    try:
        workers = child_pids(before)
        if len(workers) < 2:
            grade.fail(f"instance_group {{ count: 2 }} started {len(workers)} worker process(es), expected 2",
                       value=1.0)
            return
        victim = sorted(workers)[0]
        running = ServerThread(server, max_in_flight=4 * STREAMS, threads=2).start()
        try:
            back: dict[str, float] = {}

            def kill_and_watch() -> None:
                """SIGKILL the victim, then time how long until two worker processes run again."""
                os.kill(victim, signal.SIGKILL)
                t_kill = back["killed_at"] = time.monotonic()
                while time.monotonic() - t_kill < RESTART_BOUND_S:
                    now = child_pids(before)
                    if victim not in now and len(now) >= 2:
                        back["s"] = time.monotonic() - t_kill
                        return
                    time.sleep(0.05)
            killer = threading.Timer(1.5, kill_and_watch)
            killer.start()
            report = load(running.url, "affine", duration=3.0 if quick else 6.0, warmup=0.0, timeline=True, **kw)
            killer.join()
            back_s = back.get("s")
        finally:
            times: dict[str, float] = {}

            def stop() -> None:
                times["stop"] = time.monotonic()
                running.stop()
                times["stopped"] = time.monotonic()
            stopper = threading.Timer(1.0, stop)
            stopper.start()
            try:
                drain = load(running.url, "affine", duration=4.0, warmup=0.0, timeline=True, **kw)
            finally:
                stopper.join()
    finally:
        shutdown(learner, server, before)
    counts = report["counts"]
    answered = counts.get("ok", 0)
    availability = answered / max(1, report["requests"])
    details.update({"kill": {"counts": counts, "retried": report["retried"], "availability": availability,
                             "worker_back_s": back_s},
                    "drain": {"counts": drain["counts"]}, "timeline": report.get("timeline", [])[:4000]})
    if availability < AVAILABILITY:
        problems.append(f"with a worker killed: {answered} of {report['requests']} requests answered right "
                        f"({availability:.2%} < {AVAILABILITY:.1%}): {counts}")
    silent = {k: counts[k] for k in ("lost", "wrong") if counts.get(k)}
    if silent:
        problems.append(f"with a worker killed: {sum(silent.values())} request(s) never answered or answered wrong "
                        f"({silent}): a lost request is never allowed, whatever the rate")
    if back_s is None:
        problems.append(f"the killed worker was not replaced within {RESTART_BOUND_S:g} s")
    # sent before stop() began: the server had taken them; each must be answered (200, or a 503 once not ready,
    # whose retry may then find the server gone: "refused" means no connection, so nothing was sent to lose)
    cut = times["stop"] - drain["t0"]
    admitted = [o for a, _, o in drain["timeline"] if a < cut]
    dropped: dict[str, int] = {}
    for o in admitted:
        if o not in ("ok", "http 503", "refused"):
            dropped[o] = dropped.get(o, 0) + 1
    details["drain"].update({"sent_before_stop": len(admitted), "stop_took_s": times["stopped"] - times["stop"],
                             "dropped": dropped})
    if dropped:
        problems.append(f"stopping the server under load dropped or broke {sum(dropped.values())} of the "
                        f"{len(admitted)} requests sent before the stop: {dropped}")
    if not any(o == "ok" for o in admitted):
        problems.append("no request was answered during the drain run")
    grade.record(len(problems), details=details, message=(
        "; ".join(problems) if problems else
        f"worker killed under 40 streams: {answered}/{report['requests']} answered right ({availability:.2%}, "
        f"{report['retried']} after a retry), worker back in {back_s:.1f} s; stopped under load: "
        f"{len(admitted)} requests sent before the stop all answered, then {drain['counts']} in all"))


@criterion("p4.server.gpu_scale")
def test_gpu_scale(grade, learner, quick):
    import torch

    ServerThread = learner.attr("ServerThread")
    root = Path(tempfile.mkdtemp(prefix="p4-server-gpu-"))
    folder = frames_repository(root)
    pool = frame_pool(folder, root / "frames.npz", rows=GPU_ROWS)
    gpu = torch.cuda.get_device_name(0)
    alone = model_ceiling(folder, "cuda")
    if alone < grade.thresholds.pass_:
        pytest.skip(f"this GPU ({gpu}) runs ResNet-50 alone at {alone:.0f} frames/s (FP32, batch 32), under the "
                    f"seed's {grade.thresholds.pass_:.0f}: no server of it can reach the mark on this card")
    rounds, duration = (1, 4.0) if quick else (2, 6.0)
    before = child_pids()
    server = start_scaled(learner, frames_models(folder), "ResNet-50 on the GPU")
    reports: list[dict] = []
    try:
        with ServerThread(server, max_in_flight=4 * STREAMS, threads=2) as mine:
            for _ in range(rounds):
                reports.append(load(mine.url, folder.name, streams=STREAMS, duration=duration, warmup=3.0,
                                    inp="INPUT__0", out="OUTPUT__0", pool=pool, timeout_s=30.0))
    finally:
        shutdown(learner, server, before)
    best = max(reports, key=lambda r: r["frames_per_s"])
    details = {"gpu": gpu, "streams": STREAMS, "rows_per_request": GPU_ROWS, "rounds": rounds,
               "model_alone_frames_per_s": alone,
               **{f"your server {m}": [r[m] for r in reports] for m in ("frames_per_s", "p50_ms", "p99_ms", "counts")}}
    wrong = sum(bad(r) for r in reports)
    if wrong:
        first = next(r["counts"] for r in reports if bad(r))
        grade.fail(f"{wrong} request(s) under {STREAMS} streams not answered right: {first}", details=details,
                   value=0.0)
        return
    fps = best["frames_per_s"]
    details["share_of_model_alone_pct"] = 100.0 * fps / alone
    grade.record(fps, details=details, message=(
        f"{STREAMS} streams x {GPU_ROWS} frames of ResNet-50 on {gpu}: {fps:.0f} frames/s answered right (p50 "
        f"{best['p50_ms']:.0f} ms, p99 {best['p99_ms']:.0f} ms), {fps / alone:.0%} of the model alone on this GPU "
        f"({alone:.0f} frames/s at batch 32)"))
