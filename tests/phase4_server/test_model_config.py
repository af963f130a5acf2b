"""Triton's ``config.pbtxt`` read against Triton's own schema (``phase4_production/server/model_config.py``)."""
from __future__ import annotations

import pytest

pytest.importorskip("tritonclient.grpc", reason="the server extra: pip install -e '.[server]'")

from phase4_production.server.model_config import (  # noqa: E402
    ConfigError,
    config_datatype,
    model_config_pb2,
    parse_config,
    read_config,
    v2_datatype,
    write_config,
)

CONFIG = """
name: "digits"
platform: "onnxruntime_onnx"
max_batch_size: 32
input [ { name: "images" data_type: TYPE_FP32 dims: [ 1, 32, 32 ] } ]
output [ { name: "logits" data_type: TYPE_FP32 dims: [ 10 ] } ]
dynamic_batching { max_queue_delay_microseconds: 2000 preferred_batch_size: [ 8, 16 ] }
instance_group [ { count: 2 kind: KIND_CPU } ]
version_policy { latest { num_versions: 1 } }
"""


def test_a_triton_config_parses_into_tritons_schema():
    c = parse_config(CONFIG)
    assert c.name == "digits" and c.max_batch_size == 32
    assert [(i.name, v2_datatype(i.data_type), list(i.dims)) for i in c.input] == [("images", "FP32", [1, 32, 32])]
    assert c.dynamic_batching.max_queue_delay_microseconds == 2000
    assert list(c.dynamic_batching.preferred_batch_size) == [8, 16]
    assert c.instance_group[0].count == 2 and c.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_CPU
    assert c.version_policy.WhichOneof("policy_choice") == "latest" and c.version_policy.latest.num_versions == 1


@pytest.mark.parametrize("text, says", [
    ('name: "m"\nmax_batch: 4\n', "max_batch"),                      # a field Triton does not have
    ('name: "m"\ninput [ { name: "x" data_type: TYPE_FLOAT32 } ]', "TYPE_FLOAT32"),  # an enum value it does not have
    ('name: "m"\nmax_batch_size: "four"\n', "max_batch_size"),        # a wrong type
    ('name: "m"\ninput [ { name: "x" ', "2:"),                         # cut short
])
def test_a_config_triton_would_refuse_is_refused_with_its_line(text, says):
    with pytest.raises(ConfigError) as e:
        parse_config(text, "repo/m/config.pbtxt")
    assert "repo/m/config.pbtxt" in str(e.value) and says in str(e.value), str(e.value)


def test_read_and_write_round_trip_and_a_missing_file_is_named(tmp_path):
    model = tmp_path / "digits"
    model.mkdir()
    write_config(parse_config(CONFIG), model)
    assert read_config(model) == parse_config(CONFIG)
    with pytest.raises(ConfigError, match="no such file"):
        read_config(tmp_path / "other")


def test_every_config_datatype_has_its_v2_name_and_back():
    for name, value in model_config_pb2.DataType.items():
        if name == "TYPE_INVALID":
            with pytest.raises(ConfigError):
                v2_datatype(value)
            continue
        assert config_datatype(v2_datatype(value)) == value
    assert v2_datatype(model_config_pb2.TYPE_STRING) == "BYTES" and v2_datatype(model_config_pb2.TYPE_FP16) == "FP16"
