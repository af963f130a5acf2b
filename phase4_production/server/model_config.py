"""Triton's model configuration, ``config.pbtxt``, read against Triton's own schema (helpers, written in full).

A Triton model repository is a folder per model: ``<repo>/<model>/config.pbtxt`` and one numbered folder per
version, ``<repo>/<model>/1/model.onnx``. ``config.pbtxt`` is a protobuf message, ``inference.ModelConfig``, in
protobuf's text format; its schema, ``model_config.proto``, ships compiled in ``tritonclient`` as
``tritonclient.grpc.model_config_pb2``, so a file that parses here is one Triton itself accepts (field names,
types, enums)::

    name: "digits"
    platform: "onnxruntime_onnx"
    max_batch_size: 32
    input [ { name: "images" data_type: TYPE_FP32 dims: [ 1, 32, 32 ] } ]
    output [ { name: "logits" data_type: TYPE_FP32 dims: [ 10 ] } ]
    dynamic_batching { max_queue_delay_microseconds: 2000 preferred_batch_size: [ 8, 16 ] }
    instance_group [ { count: 2 kind: KIND_CPU } ]
    version_policy { latest { num_versions: 1 } }

With ``max_batch_size > 0`` the ``dims`` leave out the batch dimension: a request's shape is ``[n] + dims`` with
``1 <= n <= max_batch_size``. A ``-1`` in ``dims`` is a variable dimension.

``instance_group`` says how many copies of the model run and where: :func:`instance_devices` lists one device per
instance (``"cpu"``, ``"cuda"``, ``"cuda:N"``), as Triton places them.

Reference: Triton's ``docs/user_guide/model_configuration.md``.
"""
from __future__ import annotations

from pathlib import Path

from google.protobuf import text_format
from google.protobuf.message import Message

__all__ = ["CONFIG_FILE", "ConfigError", "RepositoryError", "model_config_pb2", "parse_config", "read_config", "write_config",
           "v2_datatype", "config_datatype", "instance_devices"]

CONFIG_FILE = "config.pbtxt"


def _schema():
    try:
        from tritonclient.grpc import model_config_pb2
    except ImportError as e:  # pragma: no cover - the server extra is part of `make setup`
        raise ImportError(f"Triton's model-config schema comes with tritonclient ({e}); "
                          "pip install -e '.[server]' (make setup does)") from e
    return model_config_pb2


model_config_pb2 = _schema()


class ConfigError(ValueError):
    """A ``config.pbtxt`` that is missing, is not valid text format, or does not match Triton's schema."""


class RepositoryError(ValueError):
    """A model folder that cannot be served: the message names the model and what is wrong."""


def parse_config(text: str, source: str = CONFIG_FILE) -> Message:
    """Parse ``config.pbtxt`` text into ``model_config_pb2.ModelConfig``.

    Raises:
        ConfigError: naming ``source`` and the line and column protobuf reports (an unknown field, a wrong type,
            an enum value Triton does not have, a syntax error).
    """
    config = model_config_pb2.ModelConfig()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as e:
        raise ConfigError(f"{source}: not a valid Triton model config: {e}") from None
    return config


def read_config(path: str | Path) -> Message:
    """Read a model's ``config.pbtxt`` (``path`` is the file or the model's folder). Raises ConfigError."""
    path = Path(path)
    if path.is_dir():
        path = path / CONFIG_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file (a Triton model folder holds config.pbtxt)") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot be read: {e}") from None
    return parse_config(text, str(path))


def write_config(config: Message, path: str | Path) -> Path:
    """Write ``config`` as text format to ``path`` (a file, or a model folder to hold config.pbtxt)."""
    path = Path(path)
    if path.is_dir():
        path = path / CONFIG_FILE
    path.write_text(text_format.MessageToString(config), encoding="utf-8")
    return path


def v2_datatype(data_type: int) -> str:
    """A config ``data_type`` (``model_config_pb2.TYPE_FP32``) -> the v2 protocol's name (``"FP32"``).

    ``TYPE_STRING`` is the protocol's ``BYTES``. Raises ConfigError for ``TYPE_INVALID``.
    """
    name = model_config_pb2.DataType.Name(data_type)
    if name == "TYPE_INVALID":
        raise ConfigError("data_type is TYPE_INVALID (not set?)")
    return "BYTES" if name == "TYPE_STRING" else name.removeprefix("TYPE_")


def config_datatype(datatype: str) -> int:
    """The inverse of :func:`v2_datatype`: ``"FP32"`` -> ``model_config_pb2.TYPE_FP32``. Raises ConfigError."""
    name = "TYPE_STRING" if datatype == "BYTES" else f"TYPE_{datatype}"
    try:
        return model_config_pb2.DataType.Value(name)
    except ValueError:
        raise ConfigError(f"no config data_type for the v2 datatype {datatype!r}") from None


def instance_devices(config: Message) -> list[str]:
    """Where each instance of a model runs, one entry per worker process (``pool.instance_count`` counts them).

    As Triton reads ``instance_group``: a group without a count is 1; ``KIND_GPU`` puts ``count`` instances on each
    GPU of ``gpus`` (``"cuda:N"``), or on the default GPU (``"cuda"``) when ``gpus`` is empty (Triton would use
    every GPU it sees); ``KIND_CPU`` and ``KIND_AUTO`` run on ``"cpu"`` (name ``KIND_GPU`` to use a GPU); no group
    is one CPU instance.
    """
    gpu = model_config_pb2.ModelInstanceGroup.Kind.KIND_GPU
    devices: list[str] = []
    for g in config.instance_group:
        places = ([f"cuda:{i}" for i in g.gpus] or ["cuda"]) if g.kind == gpu else ["cpu"]
        devices += [d for d in places for _ in range(g.count or 1)]
    return devices or ["cpu"]
