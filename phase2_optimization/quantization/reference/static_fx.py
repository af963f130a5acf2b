# REFERENCE SOLUTION: excluded from the learner release (make release).
"""Task 2.4 (PyTorch): static post-training INT8 with FX graph mode and your own observers.

PyTorch 2.14 still ships FX graph mode quantization (``torch.ao.quantization.quantize_fx``,
deprecated in favour of torchao's PT2E flow); the PT2E entry points (``quantize_pt2e``,
``X86InductorQuantizer``) have moved to torchao, which this course does not assume.
Guide: QUANTIZATION_GUIDE.md#task-24-static-int8-post-training-quantization
"""
from __future__ import annotations

import copy
import io
import warnings
from typing import Iterable

import torch
from torch import nn

from ..hardware import resolve_reduce_range
from .observers import HistogramMSEObserver, MinMaxObserver, MovingAverageMinMaxObserver, PercentileObserver
from ..types import FxQuantConfig, QuantSpec

__all__ = ["quantized_module_count", "state_dict_bytes", "quantize_static_fx"]


# ---------------------------------------------------------------------------------------------------
# Helpers (written in full): is a PyTorch model really quantized, and how big is it
# ---------------------------------------------------------------------------------------------------
def quantized_module_count(model: nn.Module) -> int:
    """Modules from ``torch.ao.nn.quantized`` / ``torch.ao.nn.intrinsic.quantized`` (INT8 kernels)."""
    return sum(1 for m in model.modules()
               if type(m).__module__.startswith(("torch.ao.nn.quantized", "torch.ao.nn.intrinsic.quantized")))


def state_dict_bytes(model: nn.Module) -> int:
    """Bytes of ``torch.save(model.state_dict())``: what the model weighs on disk."""
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.getbuffer().nbytes


# ---------------------------------------------------------------------------------------------------
# ## Task 2.4: static INT8 post-training quantization (PyTorch FX)
# ---------------------------------------------------------------------------------------------------
def quantize_static_fx(model: nn.Module, example_input: torch.Tensor,
                       calibration_batches: Iterable[torch.Tensor],
                       config: FxQuantConfig | None = None) -> nn.Module:
    """Static INT8 of a float CNN with FX graph mode: prepare, calibrate with your observers, convert.

    Args:
        model: a float32 ``nn.Module`` in eval mode (left unchanged: work on a deep copy).
        example_input: one input batch [B, C, H, W] for tracing.
        calibration_batches: float32 batches [B, C, H, W] run through the prepared model.
        config: ``FxQuantConfig()`` when None. Activations: your Task 2.2 observer named by
            ``config.observer`` over ``QuantSpec("uint8", symmetric=False, reduce_range=...)``
            (reduce_range resolved with ``resolve_reduce_range``); weights: your ``MinMaxObserver``
            over ``QuantSpec("int8", symmetric=True, per_channel=config.per_channel, axis=0)``.

    Returns:
        The converted ``torch.fx.GraphModule`` (eval mode): float32 in, float32 out, INT8 inside
        (``torch.ao.nn.quantized`` modules such as ``QuantizedConv2d`` / ``QuantizedConvReLU2d``).

    Tolerance the grader applies (p2.quantization.fx_accuracy): quantized modules present, state dict at most
    0.3x the float one, and top-1 on the digits test split within 1.0 pt of FP32 (full marks 0.3 pt).

    Guide: QUANTIZATION_GUIDE.md#task-24-static-int8-post-training-quantization
    """
    # BEGIN SOLUTION
    from torch.ao.quantization import QConfig, QConfigMapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    # Step 1: defaults; select the quantized engine (torch.backends.quantized.engine = config.backend).
    config = config if config is not None else FxQuantConfig()
    torch.backends.quantized.engine = config.backend
    # Step 2: observer factories with .with_args(...): the activation observer named by config.observer
    #   and a per-channel (or per-tensor) symmetric int8 MinMaxObserver for the weights.
    act = QuantSpec("uint8", symmetric=False, reduce_range=resolve_reduce_range(config.reduce_range))
    weight = QuantSpec("int8", symmetric=True, per_channel=config.per_channel, axis=0)
    activation = {
        "minmax": MinMaxObserver.with_args(spec=act),
        "moving_average": MovingAverageMinMaxObserver.with_args(spec=act,
                                                                averaging_constant=config.averaging_constant),
        "percentile": PercentileObserver.with_args(spec=act, percentile=config.percentile, bins=config.bins),
        "mse": HistogramMSEObserver.with_args(spec=act, bins=config.bins),
    }[config.observer]
    qconfig = QConfig(activation=activation, weight=MinMaxObserver.with_args(spec=weight))
    # Step 3: prepare_fx(deep copy in eval mode, QConfigMapping().set_global(qconfig), (example_input,)).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization's deprecation notices
        prepared = prepare_fx(copy.deepcopy(model).eval(), QConfigMapping().set_global(qconfig),
                              (example_input,))
        # Step 4: calibrate: run every batch through the prepared model under torch.no_grad().
        with torch.no_grad():
            for batch in calibration_batches:
                prepared(batch)
        # Step 5: convert_fx, eval mode.
        return convert_fx(prepared).eval()
    # END SOLUTION
    """ # BEGIN PROMPT
    # Step 1: defaults; select the quantized engine (torch.backends.quantized.engine = config.backend).
    # Step 2: observer factories with .with_args(...): the activation observer named by config.observer
    #   and a per-channel (or per-tensor) symmetric int8 MinMaxObserver for the weights.
    # Step 3: prepare_fx(deep copy in eval mode, QConfigMapping().set_global(qconfig), (example_input,)).
    # Step 4: calibrate: run every batch through the prepared model under torch.no_grad().
    # Step 5: convert_fx, eval mode.
    raise NotImplementedError("Task 2.4: see QUANTIZATION_GUIDE.md#task-24-static-int8-post-training-quantization")
    """  # END PROMPT
