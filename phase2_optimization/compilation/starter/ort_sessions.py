"""Task 2.9: ONNX Runtime sessions: optimization levels, the saved optimized graph, threads.

Guide: COMPILATION_GUIDE.md#task-29-onnx-runtime-sessions
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

from ..types import ORT_LEVELS, SessionConfig, SessionTiming

__all__ = ["make_session", "benchmark_sessions", "fastest_session"]


# ---------------------------------------------------------------------------------------------------
# ## Task 2.9: ONNX Runtime sessions
# ---------------------------------------------------------------------------------------------------
def make_session(onnx_path: str | os.PathLike, config: SessionConfig | None = None):
    """Open an ONNX Runtime ``InferenceSession`` exactly as ``config`` says.

    Args:
        onnx_path: the ``.onnx`` file.
        config: ``SessionConfig``; None = defaults (level "all", one intra-op thread, sequential,
            CPU). ``optimization_level`` maps to ``onnxruntime.GraphOptimizationLevel`` through
            ``ORT_LEVELS``; ``optimized_model_path`` becomes ``SessionOptions.optimized_model_filepath``
            (ONNX Runtime writes the graph it optimized there while creating the session).

    Returns:
        An ``onnxruntime.InferenceSession`` whose ``get_session_options()`` shows the level, the
        thread counts and the execution mode asked for, on ``config.providers``.

    Raises:
        ValueError: a requested execution provider is not available here (the message lists the
            available ones).

    Tolerance the grader applies: p2.compilation.ort_levels opens the grader's ResNet-18 file at each of the
    four levels with an optimized_model_path: the saved graph must have exactly the node count of
    the grader's own session at that level, and the session's outputs must match the model's
    within 1e-4 relative; 100 % of levels to pass.

    Guide: COMPILATION_GUIDE.md#task-29-onnx-runtime-sessions
    """
    # Step 1: config = config or SessionConfig(); every provider in config.providers must be in
    #   onnxruntime.get_available_providers(), else ValueError listing those available.
    # Step 2: so = onnxruntime.SessionOptions();
    #   so.graph_optimization_level = getattr(onnxruntime.GraphOptimizationLevel, ORT_LEVELS[config.optimization_level]);
    #   so.intra_op_num_threads / so.inter_op_num_threads from the config;
    #   so.execution_mode = ExecutionMode.ORT_SEQUENTIAL or ORT_PARALLEL.
    # Step 3: with config.optimized_model_path: create its folder, so.optimized_model_filepath = str(path).
    # Step 4: return onnxruntime.InferenceSession(str(onnx_path), sess_options=so, providers=list(config.providers)).
    raise NotImplementedError("Task 2.9: see COMPILATION_GUIDE.md#task-29-onnx-runtime-sessions")


def benchmark_sessions(onnx_path: str | os.PathLike, make_input: Callable[[], np.ndarray],
                       configs: dict[str, SessionConfig], *, warmup: int = 5,
                       iterations: int = 30) -> list[SessionTiming]:
    """Time one ``session.run`` under each configuration.

    Args:
        onnx_path: the ``.onnx`` file.
        make_input: returns a fresh float32 input array for the session's first input (called once
            per configuration, before its timing starts).
        configs: label -> ``SessionConfig``. A config without ``optimized_model_path`` gets one in a
            temporary folder, so every row can report the node count ONNX Runtime ran.
        warmup: untimed runs per configuration (>= 0); iterations: timed runs (>= 1).

    Returns:
        One ``SessionTiming`` per config, in order: ``session_s`` (seconds to create the session,
        where the graph is optimized), ``p50_ms``/``p90_ms`` of ``session.run`` (time.perf_counter
        around each run, numpy's default percentiles) and ``nodes`` of the saved optimized graph.

    Raises:
        ValueError: ``warmup < 0`` or ``iterations < 1`` (before any session is made), or a config
            asks for an execution provider that is not available (from ``make_session``).

    Tolerance the grader applies: none (the grader times sessions itself in p2.compilation.ort_speedup);
    the unit tests check the rows' order, fields and node counts.

    Guide: COMPILATION_GUIDE.md#task-29-onnx-runtime-sessions
    """
    # Step 1: ValueError unless warmup >= 0 and iterations >= 1; a tempfile.TemporaryDirectory for the
    #   configs without optimized_model_path (dataclasses.replace(cfg, optimized_model_path=...)).
    # Step 2: per config: time make_session with time.perf_counter (session_s); feed = {first input name:
    #   make_input()}; `warmup` untimed runs; `iterations` timed runs of session.run(None, feed), in ms.
    # Step 3: nodes = len(onnx.load(saved_path).graph.node) if the file exists, else None;
    #   p50, p90 = np.percentile(times, [50, 90]); append SessionTiming(...).
    raise NotImplementedError("Task 2.9: see COMPILATION_GUIDE.md#task-29-onnx-runtime-sessions")


def fastest_session(onnx_path: str | os.PathLike, *, intra_op_threads: int = 1,
                    optimized_model_path: str | os.PathLike | None = None):
    """Your fastest CPU session for a model, with the thread budget you are given.

    Args:
        onnx_path: the ``.onnx`` file (FP32).
        intra_op_threads: the threads the session may use (>= 1). The grader times PyTorch with the
            same number, so set ``intra_op_num_threads`` to exactly this (0, "every core", is refused).
        optimized_model_path: where to save the optimized graph (None: do not save).

    Returns:
        An ``onnxruntime.InferenceSession`` on the CPUExecutionProvider, FP32 (no quantization, no
        FP16: the outputs must match the model), sequential execution, already run once.

    Raises:
        ValueError: ``intra_op_threads < 1``.

    Tolerance the grader applies: p2.compilation.ort_speedup: gates first (a CPU session, intra-op threads equal
    to the budget, sequential execution, outputs within 1e-4 relative of eager PyTorch on fresh
    inputs), then PyTorch eager FP32 time / your session's time, ResNet-18 224x224 batch 1, both at
    the same thread count, interleaved: >= 1.3x passes, 1.6x full marks on the cpu profile (see
    EXPECTED_OUTCOMES.md for cpu-vnni).

    Guide: COMPILATION_GUIDE.md#task-29-onnx-runtime-sessions
    """
    # Step 1: intra_op_threads < 1 -> ValueError.
    # Step 2: make_session(onnx_path, SessionConfig(optimization_level=..., intra_op_threads=intra_op_threads,
    #   inter_op_threads=1, execution_mode="sequential", optimized_model_path=...)). Which level is fastest?
    #   Measure them with benchmark_sessions before you choose.
    # Step 3: run it once on a zero input of the model's shape (symbolic dims -> 1): the first run allocates
    #   ONNX Runtime's memory arena. Return the session.
    raise NotImplementedError("Task 2.9: see COMPILATION_GUIDE.md#task-29-onnx-runtime-sessions")
