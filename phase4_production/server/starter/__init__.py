"""Phase 4 starter (part server): a KServe v2 inference server, measured against real Triton. Fill in every
``NotImplementedError``.

Work through the tasks in order, reading the matching section of ``phase4_production/SERVER_DEPLOYMENT_GUIDE.md``
first:

    Task 4.12  server.py      InferenceServer.find_model, .metadata,           a KServe v2 server
                              .check_inputs, .infer
    Task 4.13  repository.py  select_versions, check_config,                   a model repository
                              load_repository, build_repository
    Task 4.14  pool.py        WorkerPool.submit, .next_batch, .run_batch,      scale on one machine
                              .close
               scaled_server.py  ScaledServer.submit_infer
    Task 4.15  metrics.py     ServerMetrics.add_model, .record_batch,          monitoring
                              .record_request, .observe
    Task 4.16  loadtest.py    send_request, run_streams, summarize_load,            a load and availability test
                              availability_timeline

Check one task with ``make grade PHASE=4 PART=server TASK=N``; serve your repository with
``python -m phase4_production.server repository`` then ``... serve``. ``protocol.py``, ``model_config.py``,
``app.py``, ``workers.py`` and ``triton_peer.py``, beside this folder, and the helpers marked "written in full" are complete.
"""
from ..app import ServerThread, make_app
from ..model_config import ConfigError, read_config, write_config
from ..protocol import InferRequest, ProtocolError, parse_infer_request
from .repository import (
    RepositoryError,
    ServedModel,
    build_repository,
    check_config,
    classifier,
    load_repository,
    onnx_signature,
    select_versions,
)
from .pool import BatchingPolicy, Pending, WorkerPool, batching_policy, instance_count, instance_devices, then
from .scaled_server import ScaledServer
from .metrics import ACCESS_LOG, FAILURE_REASONS, LATENCY_BUCKETS_S, ServerMetrics, exposition
from .server import InferenceServer
from .loadtest import (
    LoadTestReport,
    RequestRecord,
    availability_timeline,
    decode_output,
    encode_request,
    run_load,
    run_streams,
    send_request,
    summarize_load,
)

__all__ = [
    # helpers (written in full)
    "ServerThread", "make_app", "ConfigError", "read_config", "write_config", "InferRequest", "ProtocolError",
    "parse_infer_request", "ServedModel", "RepositoryError", "onnx_signature", "classifier",
    # Task 4.12
    "InferenceServer",
    # Task 4.13
    "select_versions", "check_config", "load_repository", "build_repository",
    # Task 4.14 (helpers: BatchingPolicy, Pending, batching_policy, instance_count, instance_devices, then)
    "WorkerPool", "ScaledServer", "BatchingPolicy", "Pending", "batching_policy", "instance_count", "instance_devices", "then",
    # Task 4.15 (helpers: exposition, ACCESS_LOG, FAILURE_REASONS, LATENCY_BUCKETS_S)
    "ServerMetrics", "exposition", "ACCESS_LOG", "FAILURE_REASONS", "LATENCY_BUCKETS_S",
    # Task 4.16 (helpers: RequestRecord, LoadTestReport, encode_request, decode_output, run_load)
    "send_request", "run_streams", "summarize_load", "availability_timeline", "RequestRecord", "LoadTestReport",
    "encode_request", "decode_output", "run_load",
]
