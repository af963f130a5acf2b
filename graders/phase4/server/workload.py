"""What the server criteria share: the grader's own ``affine`` repository and model loader, and raw HTTP calls.

The grader imports nothing of ``phase4_production``: the learner's copy of it is theirs. What it needs of the
part's helpers comes from the learner's exports where it is part of their server (``ServerThread``,
``parse_infer_request``), and from the grader's own reading where it measures: ``config.pbtxt`` parsed here against
Triton's schema (``tritonclient``), and real Triton started from the course's own ``triton_peer.py``
(:func:`trusted_peer`, loaded by path from the grader's copy, never the submission's).

The grader never trusts the learner's loader where it grades something else: ``p4.server.protocol`` serves models
the grader loaded itself (:class:`GraderModel`, the same attributes as the part's ``ServedModel``), so Task 4.12 is
graded on its own, whatever state Task 4.13 is in.
"""
from __future__ import annotations

import http.client
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ...course import REPO_ROOT

TIMEOUT_S = 20.0

CONFIG = """name: "affine"
max_batch_size: 8
input [ { name: "x" data_type: TYPE_FP32 dims: [ 4 ] } ]
output [ { name: "y" data_type: TYPE_FP32 dims: [ 3 ] } ]
dynamic_batching { max_queue_delay_microseconds: 500 }
instance_group [ { count: 1 kind: KIND_CPU } ]
version_policy { latest { num_versions: 1 } }
"""


def weights(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(4, 3)).astype(np.float32), rng.normal(size=3).astype(np.float32)


def affine_repository(root: Path, versions=(1, 3), config: str = CONFIG, name: str = "affine") -> Path:
    """``root/<name>/config.pbtxt`` and ``<v>/model.onnx`` = x @ W_v + b_v (different weights per version)."""
    folder = root / name
    for v in versions:
        w, b = weights(v)
        graph = helper.make_graph(
            [helper.make_node("MatMul", ["x", "W"], ["xw"]), helper.make_node("Add", ["xw", "B"], ["y"])], name,
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3])],
            [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        (folder / str(v)).mkdir(parents=True, exist_ok=True)
        onnx.save(model, folder / str(v) / "model.onnx")
    (folder / "config.pbtxt").write_text(config, encoding="utf-8")
    return folder


def affine(x: np.ndarray, version: int) -> np.ndarray:
    w, b = weights(version)
    return x.astype(np.float32) @ w + b


DENSE_WIDTH = 4096
DENSE_CONFIG = """name: "dense"
max_batch_size: 32
input [ { name: "x" data_type: TYPE_FP32 dims: [ 4096 ] } ]
output [ { name: "y" data_type: TYPE_FP32 dims: [ 16 ] } ]
dynamic_batching { max_queue_delay_microseconds: 2000 preferred_batch_size: [ 16, 32 ] }
instance_group [ { count: 2 kind: KIND_CPU } ]
"""


def dense_weights() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(2048)
    w1 = (rng.normal(size=(DENSE_WIDTH, DENSE_WIDTH)) / np.sqrt(DENSE_WIDTH)).astype(np.float32)
    return w1, (rng.normal(size=(DENSE_WIDTH, 16)) / np.sqrt(DENSE_WIDTH)).astype(np.float32)


def dense_repository(root: Path, config: str = DENSE_CONFIG) -> Path:
    """``root/dense``: y = relu(x @ W1) @ W2, x [n, 4096] -> y [n, 16], with a 64 MiB W1.

    The grader's load model for scaling: one row costs reading all of W1 from memory (a matrix-vector product),
    32 rows cost little more per batch (a matrix-matrix product reuses each weight 32 times), so a server that
    batches serves several times the frames per second of one that runs each request alone.
    """
    w1, w2 = dense_weights()
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W1"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
         helper.make_node("MatMul", ["r", "W2"], ["y"])], "dense",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", DENSE_WIDTH])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 16])],
        [numpy_helper.from_array(w1, "W1"), numpy_helper.from_array(w2, "W2")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    folder = root / "dense"
    (folder / "1").mkdir(parents=True, exist_ok=True)
    onnx.save(model, folder / "1" / "model.onnx")
    (folder / "config.pbtxt").write_text(config, encoding="utf-8")
    return folder


def dense(x: np.ndarray) -> np.ndarray:
    w1, w2 = dense_weights()
    return np.maximum(x.astype(np.float32) @ w1, 0.0) @ w2


def expected(kind: str, x: np.ndarray) -> np.ndarray:
    """The right output of the grader's model ``kind`` ("dense", or "affine:V" for version V)."""
    if kind == "dense":
        return dense(x)
    name, _, version = kind.partition(":")
    if name == "affine" and version.isdigit():
        return affine(x, int(version))
    raise ValueError(f"no grader model {kind!r}")


@dataclass
class GraderModel:
    """The grader's own loaded model: what the part's ``ServedModel`` offers (name, version, config, path, run)."""

    name: str
    version: int
    config: Any
    path: Path
    session: Any = None

    @property
    def input_names(self) -> list[str]:
        return [i.name for i in self.config.input]

    @property
    def output_names(self) -> list[str]:
        return [o.name for o in self.config.output]

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(zip(self.output_names, self.session.run(self.output_names, inputs)))


def grader_models(folder: Path, versions: list[int]) -> dict[str, dict[int, GraderModel]]:
    """The model folder's ``versions``, loaded by the grader (ONNX Runtime, one thread)."""
    import onnxruntime as ort

    config = read_config(folder)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    out = {}
    for v in versions:
        path = folder / str(v) / "model.onnx"
        out[v] = GraderModel(folder.name, v, config, path,
                             ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"]))
    return {folder.name: out}


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def call(port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None) -> Reply:
    """One HTTP request to 127.0.0.1:port; a connection the server drops is status 0 with the error as the body."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT_S)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return Reply(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    except (OSError, http.client.HTTPException) as e:
        return Reply(0, {}, f"{type(e).__name__}: {e}".encode())
    finally:
        conn.close()


class ConfigError(ValueError):
    """A ``config.pbtxt`` Triton would refuse (the grader's own reading)."""


def parse_config(text: str, source: str = "config.pbtxt"):
    """``config.pbtxt`` text -> ``model_config_pb2.ModelConfig``, against Triton's schema; ConfigError if refused."""
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    config = model_config_pb2.ModelConfig()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as e:
        raise ConfigError(f"{source}: {e}") from None
    return config


def read_config(folder: Path):
    path = Path(folder) / "config.pbtxt"
    try:
        return parse_config(path.read_text(encoding="utf-8"), str(path))
    except OSError as e:
        raise ConfigError(f"{path}: {e}") from None


def v2_datatype(data_type: int) -> str:
    from tritonclient.grpc import model_config_pb2

    name = model_config_pb2.DataType.Name(data_type)
    return "BYTES" if name == "TYPE_STRING" else name.removeprefix("TYPE_")


_PEER = None


def trusted_peer():
    """The course's own ``phase4_production/server/triton_peer.py``, loaded by path from the grader's copy.

    A submission's copy of that file could start anything and call it Triton; this one starts the real binary. Its
    module-level imports are the standard library's; the peer process runs from the grader's copy too (its
    ``REPO_ROOT`` is this file's repository).
    """
    global _PEER
    if _PEER is None:
        path = REPO_ROOT / "phase4_production" / "server" / "triton_peer.py"
        spec = importlib.util.spec_from_file_location("_inference_lab_trusted_triton_peer", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _PEER = module
    return _PEER
