"""Task 4.13: the learner's repository loader on the grader's repositories, the learner's own repository, and the
learner's server beside real Triton serving that same repository.

- ``repository``: ``select_versions`` on every policy; ``check_config`` on configs that do and do not describe their
  ONNX model; ``load_repository`` on a good repository (the right versions, the right numbers) and on broken ones
  (refused, the message naming the model); ``build_repository``: parses against Triton's schema (the grader's own
  read), batches dynamically, and its ``model.onnx`` computes the catalog's classifier within 1e-4.
- ``parity``: real Triton (``triton_peer``, nvidia-pytriton) and the learner's server both serve the learner's
  repository; the same requests (random batch sizes, JSON and binary) go to both through ``tritonclient``; outputs
  must agree within 1e-4, and so must the model metadata.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest

from ...plugin import criterion
from ...submission import LearnerError
from .workload import CONFIG, ConfigError, affine, affine_repository, parse_config, read_config, trusted_peer, v2_datatype

ATOL = 1e-4


def _policy(text: str):
    return parse_config('name: "m"\n' + text)


POLICIES = [
    ("", [1, 3, 2], [3]),
    ("version_policy { latest { num_versions: 2 } }", [5, 1, 3], [3, 5]),
    ("version_policy { latest { num_versions: 9 } }", [4, 1], [1, 4]),
    ("version_policy { all { } }", [2, 7, 1], [1, 2, 7]),
    ("version_policy { specific { versions: [ 2, 7 ] } }", [1, 2, 7], [2, 7]),
]
REFUSED = [("", []), ("version_policy { specific { versions: [ 4 ] } }", [1, 2])]
SIG = {"inputs": [("x", "FP32", [None, 4])], "outputs": [("y", "FP32", [None, 3])]}
#: (config edit, does it still describe the ONNX model?)
EDITS = [
    (lambda t: t, True),
    (lambda t: t.replace("dims: [ 4 ]", "dims: [ -1 ]"), True),
    (lambda t: t.replace('name: "affine"', 'name: "other"'), False),
    (lambda t: t.replace('name: "x"', 'name: "input"'), False),
    (lambda t: t.replace("dims: [ 3 ]", "dims: [ 4 ]"), False),
    (lambda t: t.replace("dims: [ 4 ]", "dims: [ 1, 4 ]"), False),
    (lambda t: t.replace("TYPE_FP32 dims: [ 4 ]", "TYPE_INT64 dims: [ 4 ]"), False),
    (lambda t: t.replace("max_batch_size: 8", "max_batch_size: 0"), False),
    (lambda t: t.replace("max_queue_delay_microseconds: 500",
                         "max_queue_delay_microseconds: 500 preferred_batch_size: [ 16 ]"), False),
]


def _own_repository_problems(learner, root: Path) -> tuple[list[str], Path | None]:
    import onnxruntime as ort
    import torch

    from labdata import catalog

    problems: list[str] = []
    try:
        folder = Path(learner.call("build_repository", root / "built"))
    except LearnerError as e:
        return [f"build_repository raised: {e}"], None
    try:
        config = read_config(folder)
    except ConfigError as e:
        return [f"your config.pbtxt: {e}"], None
    versions = sorted(int(p.name) for p in folder.iterdir() if p.is_dir() and p.name.isdigit())
    if not versions or not (folder / str(versions[-1]) / "model.onnx").is_file():
        return [f"{folder} has no <version>/model.onnx"], None
    if config.max_batch_size < 8 or not config.HasField("dynamic_batching"):
        problems.append(f"max_batch_size {config.max_batch_size} with"
                        f"{'' if config.HasField('dynamic_batching') else 'out'} dynamic_batching: a server batches "
                        "requests only with max_batch_size >= 8 and dynamic_batching set")
    ins = [(i.name, v2_datatype(i.data_type), list(i.dims)) for i in config.input]
    outs = [(o.name, v2_datatype(o.data_type), list(o.dims)) for o in config.output]
    if ins != [("images", "FP32", [1, 32, 32])] or outs != [("logits", "FP32", [10])]:
        problems.append(f"config inputs {ins} / outputs {outs}; expected images FP32 [1, 32, 32] -> logits FP32 [10]")
        return problems, folder
    sess = ort.InferenceSession(str(folder / str(versions[-1]) / "model.onnx"), providers=["CPUExecutionProvider"])
    n = max(1, min(config.max_batch_size, 16))
    x = np.random.default_rng().random((n, 1, 32, 32), dtype=np.float32)
    with torch.inference_mode():
        want = catalog.get("digits_cnn").model.eval()(torch.from_numpy(x)).numpy()
    try:
        got = sess.run(["logits"], {"images": x})[0]
    except Exception as e:  # onnxruntime's own errors
        return problems + [f"model.onnx does not run a batch of {n}: {e}"], folder
    err = float(np.abs(got - want).max())
    if err > ATOL:
        problems.append(f"model.onnx differs from the catalog's digits_cnn by {err:.2e} (more than {ATOL:g})")
    return problems, folder


@criterion("p4.server.repository")
def test_repository(grade, learner):
    root = Path(tempfile.mkdtemp(prefix="p4-server-repo-"))
    problems: list[str] = []
    error = learner.attr("RepositoryError")
    for text, available, want in POLICIES:
        try:
            got = list(learner.call("select_versions", _policy(text), list(available)))
        except LearnerError as e:
            got = f"raised {e}"
        if got != want:
            problems.append(f"select_versions({text or 'no policy'!r}, {available}) = {got}, expected {want}")
    for text, available in REFUSED:
        try:
            got = learner.attr("select_versions")(_policy(text), list(available))
            problems.append(f"select_versions({text or 'no policy'!r}, {available}) = {got}: nothing to serve, "
                            "expected RepositoryError")
        except error:
            pass
        except Exception as e:  # noqa: BLE001 - the learner's code raised something else
            problems.append(f"select_versions({text or 'no policy'!r}, {available}) raised {type(e).__name__}, "
                            "not RepositoryError")
    for k, (edit, fits) in enumerate(EDITS):
        try:
            found = list(learner.call("check_config", "affine", parse_config(edit(CONFIG)), SIG))
        except LearnerError as e:
            problems.append(f"check_config raised on config edit {k}: {e}")
            continue
        if bool(found) == fits:
            problems.append(f"check_config on config edit {k}: " + (f"{found[0]!r} for a config that fits" if fits
                                                                    else "no problem found in a config that does not "
                                                                    "fit its ONNX model"))
    good = root / "good"
    affine_repository(good, versions=(1, 2, 3), config=CONFIG.replace("num_versions: 1", "num_versions: 2"))
    try:
        models = learner.call("load_repository", good)
        served = {n: sorted(v) for n, v in models.items()}
        if served != {"affine": [2, 3]}:
            problems.append(f"load_repository served {served}; the policy (latest 2) serves affine [2, 3]")
        else:
            x = np.random.default_rng().normal(size=(5, 4)).astype(np.float32)
            for v in (2, 3):
                y = models["affine"][v].run({"x": x})["y"]
                if not np.allclose(y, affine(x, v), atol=ATOL):
                    problems.append(f"load_repository's version {v} does not compute that version's model")
    except LearnerError as e:
        problems.append(f"load_repository on a good repository raised: {e}")
    for label, config in (("a config that does not describe its model", CONFIG.replace("dims: [ 3 ]", "dims: [ 7 ]")),
                          ("a config Triton cannot parse", CONFIG.replace("max_batch_size", "max_batch"))):
        bad = root / f"bad{len(problems)}{label[:5]}"
        affine_repository(bad, name="broken_one", config=config.replace('"affine"', '"broken_one"'))
        try:
            learner.attr("load_repository")(bad)
            problems.append(f"load_repository loaded {label}")
        except error as e:
            if "broken_one" not in str(e):
                problems.append(f"load_repository refused {label} without naming the model: {e}")
        except Exception as e:  # noqa: BLE001
            problems.append(f"load_repository on {label} raised {type(e).__name__}, not RepositoryError: {e}")
    own, _ = _own_repository_problems(learner, root)
    problems += own
    details = {"problems": problems[:12]}
    if problems:
        grade.record(len(problems), message=f"{len(problems)} check(s) failed; first: {problems[0]}", details=details)
    else:
        grade.record(0, message="version policies, config checks, broken models and your own repository all right",
                     details=details)


@criterion("p4.server.parity")
def test_parity(grade, learner, quick):
    import tritonclient.http as th

    peer_module = trusted_peer()
    PeerError, TritonPeer = peer_module.PeerError, peer_module.TritonPeer
    ServerThread = learner.attr("ServerThread")  # the part's HTTP side, as the learner's copy has it
    why = peer_module.triton_available()
    if why:
        pytest.skip(why)
    root = Path(tempfile.mkdtemp(prefix="p4-server-parity-"))
    problems, folder = _own_repository_problems(learner, root)
    if folder is None:
        grade.fail("no repository to serve: " + problems[0])
        return
    server = learner.call("InferenceServer", learner.call("load_repository", folder.parent))
    name = folder.name
    rng = np.random.default_rng()
    n_requests = 12 if quick else 40
    try:
        with TritonPeer(folder) as peer, ServerThread(server) as mine:
            clients = {"real Triton": th.InferenceServerClient(peer.http_url, network_timeout=30),
                       "your server": th.InferenceServerClient(mine.url, network_timeout=30)}
            meta = {k: c.get_model_metadata(name) for k, c in clients.items()}
            shapes = {k: [(t["name"], t["datatype"], list(map(int, t["shape"]))) for t in m["inputs"] + m["outputs"]]
                      for k, m in meta.items()}
            if shapes["real Triton"] != shapes["your server"]:
                problems.append(f"metadata: real Triton says {shapes['real Triton']}, your server "
                                f"{shapes['your server']}")
            mbs = int(server.find_model(name).config.max_batch_size) or 1
            worst = 0.0
            for k in range(n_requests):
                n = int(rng.integers(1, mbs + 1))
                x = rng.random((n, 1, 32, 32), dtype=np.float32)
                binary = bool(k % 2)
                got = {}
                for who, c in clients.items():
                    inp = th.InferInput("images", [n, 1, 32, 32], "FP32")
                    inp.set_data_from_numpy(x, binary_data=binary)
                    try:
                        got[who] = c.infer(name, [inp], outputs=[th.InferRequestedOutput("logits", binary_data=binary)]
                                           ).as_numpy("logits")
                    except Exception as e:  # noqa: BLE001 - tritonclient raises InferenceServerException
                        got[who] = None
                        problems.append(f"request {k} (batch {n}): {who} answered {type(e).__name__}: {e}")
                if all(v is not None for v in got.values()):
                    err = float(np.abs(got["real Triton"] - got["your server"]).max())
                    worst = max(worst, err)
                    if err > ATOL:
                        problems.append(f"request {k} (batch {n}): outputs differ by {err:.2e}")
            for c in clients.values():
                c.close()
    except PeerError as e:
        grade.fail(f"real Triton could not serve your repository as it is: {e}", details={"repository_folder": str(folder)})
        return
    details = {"requests": n_requests, "triton_max_abs_diff": worst, "problems": problems[:12]}
    if problems:
        grade.record(len(problems), message=f"{len(problems)} disagreement(s) with real Triton; first: {problems[0]}",
                     details=details)
    else:
        grade.record(0, message=f"{n_requests} requests: your server and real Triton agree (max |diff| {worst:.1e}), "
                     "metadata equal", details=details)
