"""A fake of the TensorRT Python API, so that Task 2.11's calls are tested on a machine without a GPU.

``fake_tensorrt(major)`` returns a module that stands in for ``tensorrt`` 10.x or 11.x. It has the
members the course's code may touch **as the real bindings of that version have them**, so code that
uses a member TensorRT 11 removed fails here with the same ``AttributeError`` it would raise there.
The member lists were read off the real Python bindings (``tensorrt_cu13_bindings`` 10.16.1.11 and
11.4.0.106, ``strings tensorrt.so``) and NVIDIA's 10.x -> 11.x migration pages:

- gone in 11.x: ``BuilderFlag.FP16``/``INT8``/``BF16``/``FP8``/``OBEY_PRECISION_CONSTRAINTS``/
  ``PREFER_PRECISION_CONSTRAINTS``/``DIRECT_IO``, ``IInt8EntropyCalibrator2`` (every calibrator),
  ``IBuilderConfig.int8_calibrator``, ``set_calibration_profile``, ``Builder.platform_has_fast_fp16``,
  ``NetworkDefinitionCreationFlag.EXPLICIT_BATCH``;
- kept: ``NetworkDefinitionCreationFlag.STRONGLY_TYPED`` (ignored in 11.x: strong typing is always on),
  ``BuilderFlag.TF32``, the I/O-tensor API (``execute_async_v3``, ``set_input_shape``, ...).

Beyond the names, the fake keeps the rules a real build would enforce on these models: an optimization
profile for a dynamic input, shapes inside it (``set_input_shape`` returns False otherwise, as the real
one does), Q/DQ nodes that are symmetric INT8 (zero point 0) and no INT32 bias ``DequantizeLinear``
(the rules of ``graders/phase2/compilation/qdq_rules.py``),
engines that only the same major version deserialises. A built "engine" holds the parsed ONNX file;
``execute_async_v3`` runs it with ONNX Runtime on the host memory behind the tensor addresses it was
given (the tests pass CPU tensors, whose ``data_ptr()`` are host addresses) and counts every launch on
the legacy default stream (handle 0), which real TensorRT only warns about.
"""
from __future__ import annotations

import ctypes
import enum
import json
import types
from pathlib import Path

import numpy as np

__all__ = ["fake_tensorrt", "FakeStream", "MAGIC"]

MAGIC = b"FAKE-TRT-ENGINE\n"

_VERSIONS = {10: "10.16.1.11", 11: "11.4.0.106"}
_FLAGS_10 = ["FP16", "BF16", "INT8", "DEBUG", "GPU_FALLBACK", "REFIT", "DISABLE_TIMING_CACHE", "TF32", "SPARSE_WEIGHTS",
             "SAFETY_SCOPE", "OBEY_PRECISION_CONSTRAINTS", "PREFER_PRECISION_CONSTRAINTS", "DIRECT_IO", "FP8"]
_FLAGS_11 = ["DEBUG", "GPU_FALLBACK", "REFIT", "DISABLE_TIMING_CACHE", "TF32", "SPARSE_WEIGHTS", "SAFETY_SCOPE"]


class FakeStream:
    """A stand-in for ``torch.cuda.Stream``: a handle, a device, and ``wait_stream`` calls logged in order."""

    def __init__(self, handle: int, log: list, device: str = "cpu") -> None:
        self.cuda_stream, self.device, self.log = int(handle), device, log

    def wait_stream(self, other: "FakeStream") -> None:
        self.log.append(("wait", self.cuda_stream, other.cuda_stream))


class Dims(tuple):
    """``trt.Dims``: a shape that supports ``len`` and indexing."""


class DataType(enum.Enum):
    """``trt.DataType``: each member's value is the numpy dtype of its buffers."""

    FLOAT = "float32"
    HALF = "float16"
    INT8 = "int8"
    INT32 = "int32"
    BOOL = "bool"


def fake_tensorrt(major: int) -> types.ModuleType:
    """A fresh fake ``tensorrt`` module of major version 10 or 11 (state: ``module.launches``, ``module.log``)."""
    if major not in _VERSIONS:
        raise ValueError(f"the fake models TensorRT 10 and 11, not {major}")
    trt = types.ModuleType("tensorrt")
    trt.__version__ = _VERSIONS[major]
    trt.launches = []          # (stream handle, batch) of every execute_async_v3
    trt.log = []               # (severity, message) the fake logged
    trt.DataType = DataType
    trt.float32, trt.float16, trt.int8, trt.int32, trt.bool = (DataType.FLOAT, DataType.HALF, DataType.INT8,
                                                              DataType.INT32, DataType.BOOL)
    trt.BuilderFlag = enum.IntEnum("BuilderFlag", _FLAGS_10 if major == 10 else _FLAGS_11, start=0)
    trt.NetworkDefinitionCreationFlag = enum.IntEnum(
        "NetworkDefinitionCreationFlag", ["EXPLICIT_BATCH", "STRONGLY_TYPED"] if major == 10 else ["STRONGLY_TYPED"],
        start=0)
    trt.MemoryPoolType = enum.IntEnum("MemoryPoolType", ["WORKSPACE", "DLA_MANAGED_SRAM", "DLA_LOCAL_DRAM",
                                                         "DLA_GLOBAL_DRAM", "TACTIC_DRAM"], start=0)
    trt.TensorIOMode = enum.IntEnum("TensorIOMode", ["NONE", "INPUT", "OUTPUT"], start=0)

    class Logger:
        INTERNAL_ERROR, ERROR, WARNING, INFO, VERBOSE = range(5)

        def __init__(self, min_severity: int = 2) -> None:
            self.min_severity = min_severity

    trt.Logger = Logger

    def warn(message: str) -> None:
        trt.log.append(("WARNING", message))

    # ## Network and parser ------------------------------------------------------------------------
    class INetworkDefinition:
        def __init__(self, flags: int) -> None:
            known = sum(1 << int(f) for f in trt.NetworkDefinitionCreationFlag)
            if flags & ~known:
                raise TypeError(f"create_network: unknown flag bits {flags & ~known:#x}")
            strongly = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
            self.strongly_typed = major >= 11 or bool(flags & strongly)   # always on in 11.x
            self.inputs: list[_Tensor] = []
            self.outputs: list[_Tensor] = []
            self.onnx: bytes | None = None

        @property
        def num_inputs(self) -> int:
            return len(self.inputs)

        @property
        def num_outputs(self) -> int:
            return len(self.outputs)

        def get_input(self, i: int) -> _Tensor:
            return self.inputs[i]

        def get_output(self, i: int) -> _Tensor:
            return self.outputs[i]

    class ParserError:
        def __init__(self, desc: str) -> None:
            self._desc = desc

        def desc(self) -> str:
            return self._desc

        def __str__(self) -> str:
            return self._desc

    class OnnxParser:
        def __init__(self, network: INetworkDefinition, logger: Logger) -> None:
            self.network, self.errors = network, []

        @property
        def num_errors(self) -> int:
            return len(self.errors)

        def get_error(self, i: int) -> ParserError:
            return self.errors[i]

        def parse_from_file(self, path: str) -> bool:
            if not isinstance(path, str):
                raise TypeError("parse_from_file(): incompatible function arguments (model: str)")
            self.errors = [ParserError(e) for e in _onnx_problems(Path(path))]
            if self.errors:
                return False
            _fill_network(self.network, Path(path).read_bytes())
            return True

        def parse(self, model: bytes) -> bool:
            raise AssertionError("the course parses from a file (parse_from_file)")

    trt.OnnxParser = OnnxParser

    # ## Builder ---------------------------------------------------------------------------------
    class IOptimizationProfile:
        def __init__(self) -> None:
            self.shapes: dict[str, tuple] = {}

        def set_shape(self, input: str, min, opt, max) -> None:   # noqa: A002 - TensorRT's keyword names
            lo, mid, hi = (tuple(int(d) for d in s) for s in (min, opt, max))
            if not (len(lo) == len(mid) == len(hi)) or any(not a <= b <= c for a, b, c in zip(lo, mid, hi)):
                raise ValueError(f"set_shape({input!r}): need min <= opt <= max, got {lo}, {mid}, {hi}")
            self.shapes[input] = (lo, mid, hi)

    class IBuilderConfig:
        _slots = {"flags", "pools", "profiles", "_calibrator"}

        def __init__(self) -> None:
            self.flags = {trt.BuilderFlag.TF32}     # TF32 is on by default
            self.pools, self.profiles = {}, []

        def __setattr__(self, name, value) -> None:
            if name not in self._slots and not (major == 10 and name == "int8_calibrator"):
                raise AttributeError(f"'tensorrt.IBuilderConfig' object has no attribute '{name}'")
            object.__setattr__(self, "_calibrator" if name == "int8_calibrator" else name, value)

        def set_memory_pool_limit(self, pool_type, pool_size: int) -> None:
            self.pools[trt.MemoryPoolType(int(pool_type))] = int(pool_size)

        def get_memory_pool_limit(self, pool_type) -> int:
            return self.pools.get(trt.MemoryPoolType(int(pool_type)), 1 << 40)

        def set_flag(self, flag) -> None:
            self.flags.add(trt.BuilderFlag(int(flag)))

        def clear_flag(self, flag) -> None:
            self.flags.discard(trt.BuilderFlag(int(flag)))

        def get_flag(self, flag) -> bool:
            return trt.BuilderFlag(int(flag)) in self.flags

        def add_optimization_profile(self, profile: IOptimizationProfile) -> int:
            self.profiles.append(profile)
            return len(self.profiles) - 1

    if major == 10:
        def set_calibration_profile(self, profile) -> bool:
            return True
        IBuilderConfig.set_calibration_profile = set_calibration_profile

        class IInt8EntropyCalibrator2:
            def __init__(self) -> None:
                pass
        trt.IInt8EntropyCalibrator2 = IInt8EntropyCalibrator2

    class Builder:
        def __init__(self, logger: Logger) -> None:
            self.logger = logger

        def create_network(self, flags: int = 0) -> INetworkDefinition:
            return INetworkDefinition(int(flags))

        def create_builder_config(self) -> IBuilderConfig:
            return IBuilderConfig()

        def create_optimization_profile(self) -> IOptimizationProfile:
            return IOptimizationProfile()

        def build_serialized_network(self, network: INetworkDefinition, config: IBuilderConfig):
            problem = _build_problem(network, config)
            if problem:
                trt.log.append(("ERROR", problem))
                return None
            lo, opt, hi = config.profiles[0].shapes[network.get_input(0).name]
            header = {"major": major, "strongly_typed": network.strongly_typed,
                      "tf32": trt.BuilderFlag.TF32 in config.flags,
                      "legacy_precision_flags": sorted(f.name for f in config.flags if f.name in ("FP16", "INT8")),
                      "profile": [lo, opt, hi], "workspace": config.get_memory_pool_limit(trt.MemoryPoolType.WORKSPACE)}
            return memoryview(MAGIC + json.dumps(header).encode() + b"\n" + network.onnx)

    if major == 10:
        Builder.platform_has_fast_fp16 = property(lambda self: True)
    trt.Builder = Builder

    # ## Runtime, engine, execution context ------------------------------------------------------------
    class ICudaEngine:
        def __init__(self, header: dict, onnx_bytes: bytes) -> None:
            self.header, self.onnx = header, onnx_bytes
            net = INetworkDefinition(0)
            _fill_network(net, onnx_bytes)
            self.io = [(t, trt.TensorIOMode.INPUT) for t in net.inputs] + [(t, trt.TensorIOMode.OUTPUT)
                                                                            for t in net.outputs]
            self.session = None

        @property
        def num_io_tensors(self) -> int:
            return len(self.io)

        def get_tensor_name(self, i: int) -> str:
            return self.io[i][0].name

        def _tensor(self, name: str):
            for t, mode in self.io:
                if t.name == name:
                    return t, mode
            raise KeyError(f"no I/O tensor named {name!r}")

        def get_tensor_mode(self, name: str):
            return self._tensor(name)[1]

        def get_tensor_dtype(self, name: str):
            return self._tensor(name)[0].dtype

        def get_tensor_shape(self, name: str) -> Dims:
            return self._tensor(name)[0].shape

        def create_execution_context(self) -> "IExecutionContext":
            return IExecutionContext(self)

    class IExecutionContext:
        def __init__(self, engine: ICudaEngine) -> None:
            self.engine, self.shapes, self.addresses = engine, {}, {}

        def set_input_shape(self, name: str, shape) -> bool:
            shape = tuple(int(d) for d in shape)
            lo, _, hi = (tuple(s) for s in self.engine.header["profile"])
            ok = len(shape) == len(lo) and all(a <= d <= b for a, d, b in zip(lo, shape, hi))
            if not ok:
                trt.log.append(("ERROR", f"setInputShape: {shape} is outside the profile {lo}..{hi}"))
                return False
            self.shapes[name] = shape
            return True

        def get_tensor_shape(self, name: str) -> Dims:
            t, mode = self.engine._tensor(name)
            if mode == trt.TensorIOMode.INPUT:
                return Dims(self.shapes.get(name, t.shape))
            batch = next(iter(self.shapes.values()), (-1,))[0]
            return Dims((batch, *t.shape[1:]))

        def set_tensor_address(self, name: str, memory: int) -> bool:
            self.engine._tensor(name)
            self.addresses[name] = int(memory)
            return True

        def execute_async_v3(self, stream_handle: int) -> bool:
            if not isinstance(stream_handle, int):
                raise TypeError("execute_async_v3(): incompatible function arguments (stream_handle: int)")
            if stream_handle == 0:
                warn("Using default stream in enqueueV3() may lead to performance issues due to additional calls "
                     "to cudaStreamSynchronize() by TensorRT to ensure correct synchronization.")
            inputs = [t for t, m in self.engine.io if m == trt.TensorIOMode.INPUT]
            outputs = [t for t, m in self.engine.io if m == trt.TensorIOMode.OUTPUT]
            for t in inputs + outputs:
                if t.name not in self.addresses:
                    trt.log.append(("ERROR", f"enqueueV3: no address set for {t.name}"))
                    return False
            if any(t.name not in self.shapes for t in inputs):
                trt.log.append(("ERROR", "enqueueV3: an input shape was never set"))
                return False
            feeds = {t.name: _read(self.addresses[t.name], self.shapes[t.name], t.dtype.value) for t in inputs}
            got = self._session().run([t.name for t in outputs], feeds)
            for t, value in zip(outputs, got):
                _write(self.addresses[t.name], np.ascontiguousarray(value, dtype=t.dtype.value))
            trt.launches.append((stream_handle, self.shapes[inputs[0].name][0]))
            return True

        def _session(self):
            if self.engine.session is None:
                import onnxruntime as ort

                so = ort.SessionOptions()
                so.intra_op_num_threads = 1
                so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL   # Q/DQ as written
                self.engine.session = ort.InferenceSession(self.engine.onnx, so, providers=["CPUExecutionProvider"])
            return self.engine.session

    class Runtime:
        def __init__(self, logger: Logger) -> None:
            self.logger = logger

        def deserialize_cuda_engine(self, serialized_engine) -> ICudaEngine | None:
            data = bytes(serialized_engine)
            if not data.startswith(MAGIC):
                trt.log.append(("ERROR", "deserializeCudaEngine: not an engine"))
                return None
            head, _, onnx_bytes = data[len(MAGIC):].partition(b"\n")
            header = json.loads(head)
            if header["major"] != major:
                trt.log.append(("ERROR", f"deserializeCudaEngine: engine built by TensorRT {header['major']}.x"))
                return None
            return ICudaEngine(header, onnx_bytes)

    trt.Runtime = Runtime
    return trt


# ## What a real parse and build would refuse ----------------------------------------------------------
def _onnx_problems(path: Path) -> list[str]:
    """The parser errors TensorRT would report for this file (its Q/DQ rules), [] when it parses."""
    import onnx

    from graders.phase2.compilation.qdq_rules import parse_problems

    if not path.is_file():
        return [f"ModelImporter: cannot open {path}"]
    return parse_problems(onnx.load(str(path)))


def _fill_network(network, onnx_bytes: bytes) -> None:
    """The network's I/O tensors (names, shapes with -1 for dynamic dims, dtypes) from the ONNX file."""
    import onnx

    model = onnx.load_from_string(onnx_bytes)
    kinds = {onnx.TensorProto.FLOAT: DataType.FLOAT, onnx.TensorProto.FLOAT16: DataType.HALF,
             onnx.TensorProto.INT8: DataType.INT8, onnx.TensorProto.INT32: DataType.INT32}

    def tensor(vi):
        dims = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in vi.type.tensor_type.shape.dim)
        return _Tensor(vi.name, dims, kinds[vi.type.tensor_type.elem_type])

    init_names = {i.name for i in model.graph.initializer}
    network.inputs = [tensor(v) for v in model.graph.input if v.name not in init_names]
    network.outputs = [tensor(v) for v in model.graph.output]
    network.onnx = onnx_bytes


class _Tensor:
    """``trt.ITensor``: a network I/O tensor (name, shape with -1 for a dynamic dimension, dtype)."""

    def __init__(self, name: str, shape: tuple, dtype) -> None:
        self.name, self.shape, self.dtype = name, Dims(shape), dtype


def _build_problem(network, config) -> str | None:
    """Why a real build would return None, or None when it succeeds."""
    if network.onnx is None:
        return "buildSerializedNetwork: the network is empty (was the ONNX file parsed?)"
    inp = network.get_input(0)
    dynamic = any(d < 0 for d in inp.shape)
    if dynamic and not config.profiles:
        return f"Network has dynamic or shape inputs, but no optimization profile has been defined ({inp.name})"
    if config.profiles:
        shapes = config.profiles[0].shapes.get(inp.name)
        if shapes is None:
            return f"optimization profile is missing values for input {inp.name}"
        for s in shapes:
            if len(s) != len(inp.shape) or any(d >= 0 and d != v for d, v in zip(inp.shape, s)):
                return f"profile shape {s} does not fit input {inp.name} {tuple(inp.shape)}"
    if network.strongly_typed and any(f.name in ("FP16", "INT8") for f in config.flags):
        return "a strongly typed network cannot take the FP16/INT8 builder flags"
    return None


# ## Host memory behind tensor addresses ---------------------------------------------------------------
def _read(address: int, shape: tuple, dtype: str) -> np.ndarray:
    n = int(np.prod(shape))
    buf = (ctypes.c_byte * (n * np.dtype(dtype).itemsize)).from_address(address)
    return np.frombuffer(buf, dtype=dtype, count=n).reshape(shape).copy()


def _write(address: int, value: np.ndarray) -> None:
    ctypes.memmove(address, value.ctypes.data, value.nbytes)
