# REFERENCE SOLUTION: excluded from the learner release (make release).
"""Task 4.13: a model repository in Triton's layout, loaded the way Triton loads it.

::

    model_repository/
      digits/
        config.pbtxt          # Triton's ModelConfig, text format (model_config.py reads it)
        1/model.onnx
        2/model.onnx          # a newer version; version_policy says which ones are served

The same folder is what a full Triton serves on a GPU server (``platform: "onnxruntime_onnx"``); here your own
server loads it, and real Triton (``triton_peer.py``) serves it beside yours so the grader can compare the two.

Guide: SERVER_DEPLOYMENT_GUIDE.md#task-413-a-model-repository
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..model_config import ConfigError, RepositoryError, model_config_pb2, read_config, v2_datatype, write_config

__all__ = ["MODEL_FILE", "RepositoryError", "ServedModel", "onnx_signature", "classifier", "select_versions",
           "check_config", "load_repository", "build_repository"]

MODEL_FILE = "model.onnx"


@dataclass
class ServedModel:
    """One version of one model, loaded (helper, written in full).

    Attributes:
        name: the model's name (its folder's name).
        version: the version number (its folder's name).
        config: ``model_config_pb2.ModelConfig``.
        path: the ``model.onnx`` file.
        threads: ONNX Runtime intra-op threads.
    """

    name: str
    version: int
    config: Any
    path: Path
    threads: int = 1
    session: Any = field(default=None, repr=False)

    def load(self) -> ServedModel:
        """Create the ONNX Runtime session (CPU, ``threads`` intra-op threads); returns self.

        Raises:
            RepositoryError: ONNX Runtime refuses the file (the message names the model and version).
        """
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = self.threads, 1
        try:
            self.session = ort.InferenceSession(str(self.path), opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types
            raise RepositoryError(f"model '{self.name}' version {self.version}: ONNX Runtime cannot load "
                                  f"{self.path}: {e}") from None
        return self

    @property
    def input_names(self) -> list[str]:
        return [i.name for i in self.config.input]

    @property
    def output_names(self) -> list[str]:
        return [o.name for o in self.config.output]

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the model: ``inputs`` by name (already checked against the config) -> every output by name."""
        outs = self.session.run(self.output_names, inputs)
        return dict(zip(self.output_names, outs))


_ONNX_TYPES = {1: "FP32", 10: "FP16", 11: "FP64", 2: "UINT8", 3: "INT8", 4: "UINT16", 5: "INT16", 6: "INT32",
               7: "INT64", 9: "BOOL", 12: "UINT32", 13: "UINT64", 8: "BYTES"}


def onnx_signature(path: Path) -> dict[str, list[tuple[str, str, list[int | None]]]]:
    """The ONNX graph's inputs and outputs: ``(name, v2 datatype, dims)`` each, ``None`` for a symbolic dimension
    (helper, written in full). Initializers listed as inputs are left out."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    inits = {i.name for i in model.graph.initializer}

    def sig(values):
        out = []
        for v in values:
            if v.name in inits:
                continue
            t = v.type.tensor_type
            dims = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
            out.append((v.name, _ONNX_TYPES.get(t.elem_type, f"onnx type {t.elem_type}"), dims))
        return out
    return {"inputs": sig(model.graph.input), "outputs": sig(model.graph.output)}


# -----------------------------------------------------------------------------------------------------------------
# ## Task 4.13: which versions, and does the config describe the model?
# -----------------------------------------------------------------------------------------------------------------
def select_versions(config: Any, available: list[int]) -> list[int]:
    """The versions Triton would serve, from ``config.version_policy`` and the version folders found.

    Args:
        config: ``model_config_pb2.ModelConfig``.
        available: version numbers that have a ``model.onnx`` (any order).

    Returns:
        Ascending: ``latest { num_versions: n }`` (the default, with n = 1 when unset): the n highest; ``all``:
        every one; ``specific { versions: [...] }``: those listed.

    Raises:
        RepositoryError: nothing to serve (no version folder, or a specific version that is not there: Triton
            refuses to load the model then).

    Guide: SERVER_DEPLOYMENT_GUIDE.md#task-413-a-model-repository
    """
    # BEGIN SOLUTION
    have = sorted(set(available))
    policy = config.version_policy.WhichOneof("policy_choice") or "latest"
    if policy == "all":
        chosen = have
    elif policy == "specific":
        wanted = sorted(set(config.version_policy.specific.versions))
        missing = [v for v in wanted if v not in have]
        if missing:
            raise RepositoryError(f"model '{config.name}': version_policy asks for versions {missing}, which have no "
                                  f"{MODEL_FILE} (found {have})")
        chosen = wanted
    else:
        n = config.version_policy.latest.num_versions or 1
        chosen = have[-n:]
    if not chosen:
        raise RepositoryError(f"model '{config.name}': no version folder holds a {MODEL_FILE} (e.g. 1/{MODEL_FILE})")
    return chosen
    # END SOLUTION
    """ # BEGIN PROMPT
    # policy = config.version_policy.WhichOneof("policy_choice"): "latest" (also when None), "all" or "specific".
    # latest: config.version_policy.latest.num_versions (0 means 1). specific: config.version_policy.specific.versions.
    raise NotImplementedError("Task 4.13: see SERVER_DEPLOYMENT_GUIDE.md#task-413-a-model-repository")
    """  # END PROMPT


def check_config(name: str, config: Any, signature: dict) -> list[str]:
    """What in ``config`` does not describe the ONNX model: one sentence per problem, [] when it fits.

    Args:
        name: the model folder's name.
        config: ``model_config_pb2.ModelConfig``.
        signature: :func:`onnx_signature` of the version's ``model.onnx``.

    Checks, as Triton's ONNX Runtime backend does when it loads a model:

    - ``config.name``, when set, is the folder's name; ``max_batch_size`` >= 0;
    - the inputs and the outputs are the ONNX graph's (same names, each once), with the same datatype;
    - with ``max_batch_size > 0`` the ONNX tensor's first dimension is the batch and must be symbolic (not a fixed
      number), and ``dims`` are the rest; with 0, ``dims`` are all of them. A fixed ONNX dimension must equal the
      config's (``-1`` in the config matches anything), and the ranks must agree;
    - ``dynamic_batching`` needs ``max_batch_size > 0``; each ``preferred_batch_size`` is in 1..max_batch_size.

    Guide: SERVER_DEPLOYMENT_GUIDE.md#task-413-a-model-repository
    """
    # BEGIN SOLUTION
    problems: list[str] = []
    if config.name and config.name != name:
        problems.append(f"config.pbtxt names the model '{config.name}' but its folder is '{name}'")
    mbs = config.max_batch_size
    if mbs < 0:
        problems.append(f"max_batch_size is {mbs}; it must be >= 0")
    for kind, specs in (("input", config.input), ("output", config.output)):
        graph = {n: (dt, dims) for n, dt, dims in signature[kind + "s"]}
        seen = [s.name for s in specs]
        if sorted(seen) != sorted(graph) or len(set(seen)) != len(seen):
            problems.append(f"the config's {kind}s are {seen}; the ONNX model's are {sorted(graph)}")
            continue
        for s in specs:
            dt, dims = graph[s.name]
            try:
                want = v2_datatype(s.data_type)
            except ConfigError as e:
                problems.append(f"{kind} '{s.name}': {e}")
                continue
            if want != dt:
                problems.append(f"{kind} '{s.name}' is {want} in the config but {dt} in the ONNX model")
            if mbs > 0:
                if not dims or dims[0] is not None:
                    problems.append(f"{kind} '{s.name}': max_batch_size is {mbs} but the ONNX model's first "
                                    f"dimension is {dims[0] if dims else 'missing'}, not a symbolic batch dimension")
                    continue
                dims = dims[1:]
            if len(dims) != len(s.dims):
                problems.append(f"{kind} '{s.name}' has dims {list(s.dims)} in the config; the ONNX model's are "
                                f"{['?' if d is None else d for d in dims]}" + (" after the batch dimension"
                                                                                if mbs > 0 else ""))
                continue
            for c, o in zip(s.dims, dims):
                if c != -1 and o is not None and c != o:
                    problems.append(f"{kind} '{s.name}' has dims {list(s.dims)} in the config; the ONNX model's are "
                                    f"{['?' if d is None else d for d in dims]}")
                    break
    if config.HasField("dynamic_batching"):
        if mbs <= 0:
            problems.append("dynamic_batching needs max_batch_size > 0")
        bad = [p for p in config.dynamic_batching.preferred_batch_size if not 1 <= p <= max(mbs, 0)]
        if bad:
            problems.append(f"preferred_batch_size {bad} outside 1..max_batch_size ({mbs})")
    return problems
    # END SOLUTION
    """ # BEGIN PROMPT
    # Collect sentences in a list; each input/output spec has .name, .data_type (v2_datatype(...) -> "FP32") and
    # .dims; signature["inputs"] is [(name, "FP32", [None, 1, 32, 32]), ...] (None: symbolic).
    raise NotImplementedError("Task 4.13: see SERVER_DEPLOYMENT_GUIDE.md#task-413-a-model-repository")
    """  # END PROMPT


def load_repository(root: str | Path, *, threads: int = 1) -> dict[str, dict[int, ServedModel]]:
    """Load every model of a repository: ``{model name: {version: ServedModel (loaded)}}``.

    Args:
        root: the repository folder (one sub-folder per model).
        threads: ONNX Runtime intra-op threads per loaded model (``ServedModel.threads``).

    Every sub-folder of ``root`` that holds a ``config.pbtxt`` is a model: read its config (``read_config``),
    find its version folders (a number, holding ``model.onnx``), keep the ones :func:`select_versions` picks,
    check each against its ONNX graph (:func:`check_config` on :func:`onnx_signature`) and load it.

    Raises:
        RepositoryError: ``root`` is not a folder or holds no model; a model's config does not parse (the
            ConfigError's message, with the model's name), its versions cannot be chosen, or its config does not
            describe its ONNX model (every problem in one message). Triton refuses the whole model then, not
            the server: so does this function, and the message says which model.

    Guide: SERVER_DEPLOYMENT_GUIDE.md#task-413-a-model-repository
    """
    # BEGIN SOLUTION
    root = Path(root)
    if not root.is_dir():
        raise RepositoryError(f"model repository {root} is not a folder")
    models: dict[str, dict[int, ServedModel]] = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and (p / "config.pbtxt").is_file()):
        name = folder.name
        try:
            config = read_config(folder)
        except ConfigError as e:
            raise RepositoryError(f"model '{name}': {e}") from None
        available = [int(p.name) for p in folder.iterdir()
                     if p.is_dir() and p.name.isdigit() and (p / MODEL_FILE).is_file()]
        versions = {}
        for v in select_versions(config, available):
            path = folder / str(v) / MODEL_FILE
            problems = check_config(name, config, onnx_signature(path))
            if problems:
                raise RepositoryError(f"model '{name}' version {v}: " + "; ".join(problems))
            versions[v] = ServedModel(name, v, config, path, threads).load()
        models[name] = versions
    if not models:
        raise RepositoryError(f"model repository {root} holds no model (a folder with a config.pbtxt)")
    return models
    # END SOLUTION
    """ # BEGIN PROMPT
    raise NotImplementedError("Task 4.13: see SERVER_DEPLOYMENT_GUIDE.md#task-413-a-model-repository")
    """  # END PROMPT


def build_repository(out: str | Path, model: Any = None, *, name: str = "digits") -> Path:
    """Write a repository serving the course's digit classifier: ``out/<name>/config.pbtxt`` + ``1/model.onnx``.

    Args:
        out: the repository folder (created).
        model: a torch module taking float32 [N, 1, 32, 32] images in 0..1 to [N, 10] logits (default: the
            catalog's ``digits_cnn``, :func:`classifier`).
        name: the model's name.

    The ONNX file's input is ``images`` [batch, 1, 32, 32] and its output ``logits`` [batch, 10], with the batch
    dimension symbolic. The config says so for Triton: ``max_batch_size`` (32), the dims without the batch,
    ``dynamic_batching`` (a short ``max_queue_delay_microseconds`` and ``preferred_batch_size``: your choice,
    defended in the guide's table) and ``instance_group [{ count: 1, kind: KIND_CPU }]``. It must load in your
    server and in real Triton as it is.

    Returns:
        The model folder, ``out/<name>``.

    Guide: SERVER_DEPLOYMENT_GUIDE.md#task-413-a-model-repository
    """
    # BEGIN SOLUTION
    import torch

    model = classifier() if model is None else model
    folder = Path(out) / name
    (folder / "1").mkdir(parents=True, exist_ok=True)
    torch.onnx.export(model.eval(), (torch.zeros(2, 1, 32, 32),), str(folder / "1" / MODEL_FILE),
                      input_names=["images"], output_names=["logits"], opset_version=17, dynamo=False,
                      dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}})
    config = model_config_pb2.ModelConfig(name=name, platform="onnxruntime_onnx", max_batch_size=32)
    config.input.add(name="images", data_type=model_config_pb2.TYPE_FP32, dims=[1, 32, 32])
    config.output.add(name="logits", data_type=model_config_pb2.TYPE_FP32, dims=[10])
    config.dynamic_batching.max_queue_delay_microseconds = 2000
    config.dynamic_batching.preferred_batch_size.extend([8, 16, 32])
    config.instance_group.add(count=1, kind=model_config_pb2.ModelInstanceGroup.KIND_CPU)
    config.version_policy.latest.num_versions = 1
    write_config(config, folder)
    return folder
    # END SOLUTION
    """ # BEGIN PROMPT
    # torch.onnx.export(..., dynamo=False, dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}}), then build
    # model_config_pb2.ModelConfig(name=..., platform="onnxruntime_onnx", max_batch_size=...) with config.input.add(...),
    # config.output.add(...), config.dynamic_batching..., config.instance_group.add(...), and write_config(config, folder).
    raise NotImplementedError("Task 4.13: see SERVER_DEPLOYMENT_GUIDE.md#task-413-a-model-repository")
    """  # END PROMPT


def classifier():
    """The catalog's ``digits_cnn`` (eval mode): float32 [N, 1, 32, 32] in 0..1 to [N, 10] logits (helper)."""
    from labdata import catalog

    return catalog.get("digits_cnn").model.eval()

