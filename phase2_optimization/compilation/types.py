"""Configs and results shared by the compilation tasks 2.7-2.11 (helpers, written in full).

Configs are small dataclasses checked in ``__post_init__`` (a typo fails where it is made, not deep
inside an exporter); results carry their raw figures beside the summary. The graders read them by
attribute name: keep the names and units as they are.
"""
from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "ExportConfig", "OnnxInfo", "ExportComparison",
    "GraphReport",
    "ORT_LEVELS", "SessionConfig", "SessionTiming",
    "COMPILE_MODES", "CompileConfig", "CompileResult",
    "TRT_PRECISIONS", "TRTConfig",
]


# ---------------------------------------------------------------------------------------------------
# Task 2.7: ONNX export
# ---------------------------------------------------------------------------------------------------
@dataclass
class ExportConfig:
    """How to export a model to ONNX.

    Attributes:
        opset: the ONNX operator set version (18 is torch.export's native opset; 13..23 accepted).
        dynamic_batch: make dimension 0 of the input and output symbolic ("batch"), so one file
            runs every batch size. False fixes it to the example input's batch size.
        input_name, output_name: graph input and output names (ONNX Runtime feeds by name).
        dynamo: True uses the torch.export-based exporter (``torch.onnx.export(..., dynamo=True)``);
            False the legacy TorchScript tracer (deprecated, still common in the wild).
    """

    opset: int = 18
    dynamic_batch: bool = True
    input_name: str = "input"
    output_name: str = "logits"
    dynamo: bool = True

    def __post_init__(self) -> None:
        if not 13 <= int(self.opset) <= 23:
            raise ValueError(f"opset must be between 13 and 23, got {self.opset}")
        for what in ("input_name", "output_name"):
            if not isinstance(getattr(self, what), str) or not getattr(self, what):
                raise ValueError(f"{what} must be a non-empty string")
        if self.input_name == self.output_name:
            raise ValueError("input_name and output_name must differ")


@dataclass
class OnnxInfo:
    """What ``check_onnx`` found in a valid ONNX file.

    Attributes:
        opset: the default-domain ("" / "ai.onnx") opset the model imports.
        inputs, outputs: name -> shape, each dimension an int or the name of a symbolic dimension
            (for example ``{"input": ["batch", 3, 64, 64]}``).
        num_nodes: nodes in the main graph.
        op_counts: op_type -> how many nodes of it.
    """

    opset: int
    inputs: dict[str, list[int | str]]
    outputs: dict[str, list[int | str]]
    num_nodes: int
    op_counts: dict[str, int]


@dataclass
class ExportComparison:
    """ONNX Runtime against eager PyTorch on the same images.

    Attributes:
        max_abs_diff: max |onnx - eager| over every logit of every image (float, logits' unit).
        top1_agreement: share of images whose arg-max class is the same, 0..1.
        num_samples: images compared.
        accuracy_eager, accuracy_onnx: top-1 accuracy 0..1 against the labels (None without labels).
    """

    max_abs_diff: float
    top1_agreement: float
    num_samples: int
    accuracy_eager: float | None = None
    accuracy_onnx: float | None = None


# ---------------------------------------------------------------------------------------------------
# Task 2.8: graph optimizations
# ---------------------------------------------------------------------------------------------------
@dataclass
class GraphReport:
    """Node counts of a graph before and after ``optimize_graph``.

    Attributes:
        nodes_before, nodes_after: nodes in the main graph.
        ops_before, ops_after: op_type -> count.
        passes: what each pass removed, in the order run, e.g. ``[("remove_noops", 2), ...]``.
    """

    nodes_before: int
    nodes_after: int
    ops_before: dict[str, int]
    ops_after: dict[str, int]
    passes: list[tuple[str, int]] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------------
# Task 2.9: ONNX Runtime sessions
# ---------------------------------------------------------------------------------------------------
#: SessionConfig.optimization_level -> the name of the onnxruntime.GraphOptimizationLevel member.
ORT_LEVELS: dict[str, str] = {
    "disable": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "all": "ORT_ENABLE_ALL",
}


@dataclass
class SessionConfig:
    """How to open an ONNX Runtime InferenceSession.

    Attributes:
        optimization_level: a key of ``ORT_LEVELS``.
        intra_op_threads: threads inside one operator (>= 1; ONNX Runtime's 0 = "every core" is
            refused here so comparisons always say how many cores they used).
        inter_op_threads: threads running independent operators at once (>= 1; only used by the
            "parallel" execution mode).
        execution_mode: "sequential" or "parallel".
        optimized_model_path: where ONNX Runtime writes the graph it optimized (None: nowhere).
        providers: execution providers, in order of preference.
    """

    optimization_level: str = "all"
    intra_op_threads: int = 1
    inter_op_threads: int = 1
    execution_mode: str = "sequential"
    optimized_model_path: str | None = None
    providers: tuple[str, ...] = ("CPUExecutionProvider",)

    def __post_init__(self) -> None:
        if self.optimization_level not in ORT_LEVELS:
            raise ValueError(f"optimization_level must be one of {list(ORT_LEVELS)}, "
                             f"got {self.optimization_level!r}")
        if int(self.intra_op_threads) < 1 or int(self.inter_op_threads) < 1:
            raise ValueError("intra_op_threads and inter_op_threads must be >= 1")
        if self.execution_mode not in ("sequential", "parallel"):
            raise ValueError(f"execution_mode must be 'sequential' or 'parallel', got {self.execution_mode!r}")
        if not self.providers:
            raise ValueError("providers must name at least one execution provider")
        self.providers = tuple(self.providers)


@dataclass
class SessionTiming:
    """One session configuration, timed.

    Attributes:
        name: the label it was given.
        config: the SessionConfig used.
        p50_ms, p90_ms: median and 90th percentile of one ``session.run`` (ms).
        nodes: nodes in the graph ONNX Runtime ran (its saved optimized model), None if not saved.
        session_s: seconds to create the session (graph optimization happens here).
    """

    name: str
    config: SessionConfig
    p50_ms: float
    p90_ms: float
    nodes: int | None
    session_s: float


# ---------------------------------------------------------------------------------------------------
# Task 2.10: torch.compile
# ---------------------------------------------------------------------------------------------------
#: torch.compile's modes.
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


@dataclass
class CompileConfig:
    """Arguments of ``torch.compile``.

    Attributes:
        backend: a name in ``torch._dynamo.list_backends()`` ("inductor" generates C++/OpenMP code
            on a CPU and Triton kernels on a GPU; "eager" and "aot_eager" are for debugging).
        mode: one of ``COMPILE_MODES``; "reduce-overhead" records CUDA graphs (GPU only).
        dynamic: True compiles with a symbolic batch dimension; False specialises on every shape
            (one compilation per new shape); None lets Dynamo recompile once, dynamically, after it
            sees a shape change ("automatic dynamic").
        fullgraph: True raises on a graph break instead of silently splitting the graph.
    """

    backend: str = "inductor"
    mode: str = "default"
    dynamic: bool | None = True
    fullgraph: bool = False

    def __post_init__(self) -> None:
        if self.mode not in COMPILE_MODES:
            raise ValueError(f"mode must be one of {COMPILE_MODES}, got {self.mode!r}")
        if not isinstance(self.backend, str) or not self.backend:
            raise ValueError("backend must be a backend name such as 'inductor'")
        if self.dynamic not in (True, False, None):
            raise ValueError(f"dynamic must be True, False or None, got {self.dynamic!r}")


@dataclass
class CompileResult:
    """A compiled model, warmed up on the batch sizes it will serve.

    Attributes:
        compiled: the compiled module; call it under ``torch.inference_mode()``.
        compile_s: total seconds of every warm-up call (compilation included), measured around
            each call with ``time.perf_counter``.
        warmup_s: batch size -> seconds of its warm-up call(s).
        graphs: graphs Dynamo compiled during the warm-up
            (``torch._dynamo.utils.counters["stats"]["unique_graphs"]`` after minus before).
    """

    compiled: object
    compile_s: float
    warmup_s: dict[int, float]
    graphs: int


# ---------------------------------------------------------------------------------------------------
# Task 2.11: TensorRT
# ---------------------------------------------------------------------------------------------------
TRT_PRECISIONS = ("fp32", "fp16", "int8")


@dataclass
class TRTConfig:
    """How to build a TensorRT engine from an ONNX file.

    Attributes:
        precision: "fp32" (TF32 off, so results match PyTorch FP32), "fp16" (an FP16 copy of the ONNX
            file) or "int8" (explicit quantization: a symmetric INT8 Q/DQ copy, calibrated, the layers
            without Q/DQ staying FP32). The file carries the precision; the network is strongly typed.
        min_batch, opt_batch, max_batch: the optimization profile of the batch dimension (the engine
            accepts min..max; kernels are tuned for opt).
        workspace_mb: scratch memory the builder may use for its tactics (MiB).
        calibration_batches: at most this many batches are used to calibrate the INT8 Q/DQ file.
        calibration_cache: the INT8 Q/DQ ONNX file: reused when it exists (no calibration), written
            there otherwise (None: a temporary file). The same file runs in ONNX Runtime.
    """

    precision: str = "fp16"
    min_batch: int = 1
    opt_batch: int = 1
    max_batch: int = 32
    workspace_mb: int = 1024
    calibration_batches: int = 16
    calibration_cache: str | None = None

    def __post_init__(self) -> None:
        if self.precision not in TRT_PRECISIONS:
            raise ValueError(f"precision must be one of {TRT_PRECISIONS}, got {self.precision!r}")
        if not 1 <= self.min_batch <= self.opt_batch <= self.max_batch:
            raise ValueError(f"need 1 <= min_batch <= opt_batch <= max_batch, got "
                             f"{self.min_batch}, {self.opt_batch}, {self.max_batch}")
        if self.workspace_mb < 16 or self.calibration_batches < 1:
            raise ValueError("workspace_mb must be >= 16 and calibration_batches >= 1")
