"""What the server criteria share: the grader's own ``affine`` repository and model loader, and raw HTTP calls.

``phase4_production`` is imported inside functions only: the learner's copy of it must be the one imported.
The grader never trusts the learner's loader where it grades something else: ``p4.server.protocol`` serves models
the grader loaded itself (:class:`GraderModel`, the same attributes as the part's ``ServedModel``), so Task 4.12 is
graded on its own, whatever state Task 4.13 is in.
"""
from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

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

    from phase4_production.server.model_config import read_config  # after the learner's copy is imported

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
