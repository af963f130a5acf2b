"""Task 3.6: capture a model's forward pass once in a CUDA graph, then replay it for every request.

At batch 1 a small CNN is *launch-bound*: the GPU finishes each kernel faster than Python and the
CUDA driver can queue the next one, so most of a call's time is CPU-side launch overhead. A CUDA
graph records the whole sequence of kernels once; ``graph.replay()`` then queues all of them with a
single launch. CUDA only: there is no CPU equivalent.

Guide: GPU_OPTIMIZATION_GUIDE.md#task-36-cuda-graphs-for-small-batch-latency
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["GraphedModel"]


def _model_device(model: nn.Module) -> torch.device | None:
    """The device of the model's first parameter (or buffer); None for a model that has neither.

    (helper, written in full)
    """
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return None


class GraphedModel:
    """A model's forward pass at one fixed input shape, captured in a CUDA graph and replayed per call.

    Usage::

        model = build_model().eval().to("cuda")
        graphed = GraphedModel(model, torch.randn(1, 1, 32, 32, device="cuda"))   # warm-up + capture (once)
        y = graphed(x)          # x: [1, 1, 32, 32] float32 -> y: a fresh tensor, same as model(x)

    What a graph replays is exactly what was captured, which is where every pitfall comes from:

    * **Static shapes.** The kernels were recorded for one input shape and dtype (and device); another
      batch size needs its own ``GraphedModel`` (or pad requests up to the captured batch).
    * **Static memory.** Replay reads the same input buffer and writes the same output buffer every
      time: copy each request into ``static_input`` and hand back a *clone* of ``static_output``, or
      the next replay overwrites what an earlier caller still holds.
    * **No host synchronisation, no CPU work inside the forward.** ``.item()``, ``.cpu()``,
      ``print(tensor)``, Python ``if`` on a tensor's value, or a NumPy step cannot be captured (capture
      raises) or, worse, run once at capture and never again. Only GPU kernels are replayed.
    * **Randomness.** Dropout in train mode or ``torch.rand`` inside the forward would replay the same
      numbers unless registered with the graph's generator; serve in ``eval()`` mode.
    * **Weights by address.** Replay reads the parameters' memory as it was at capture: updating them
      in place (``p.copy_(...)``, ``load_state_dict``) is seen, replacing them (``model.to(...)``, a new
      model) is not, and the model must stay alive as long as the graph does.
    * **Memory held.** The graph keeps its own memory pool (the static buffers and every intermediate
      activation) for as long as this object lives: one graph per batch size costs memory per size.

    Attributes:
        model: the captured model (kept alive: the graph reads its weights).
        shape: the captured input shape, e.g. ``(1, 1, 32, 32)``.
        dtype: the captured input dtype, e.g. ``torch.float32``.
        device: the CUDA device the graph runs on.
        static_input: the tensor the graph reads (``shape``, ``dtype``, on ``device``).
        static_output: the tensor the graph writes (the model's output for ``static_input``).
        graph: the ``torch.cuda.CUDAGraph``.
    """

    # -----------------------------------------------------------------------------------------------
    # ## Task 3.6: CUDA graphs for small-batch latency
    # -----------------------------------------------------------------------------------------------
    def __init__(self, model: nn.Module, example: torch.Tensor, *, warmup: int = 3) -> None:
        """Warm the model up, then capture one forward pass at ``example``'s shape in a CUDA graph.

        Args:
            model: a module already on a CUDA device, in ``eval()`` mode, whose forward takes one tensor
                ``[B, ...]`` and returns one tensor, with no host synchronisation inside.
            example: a CUDA tensor ``[B, ...]`` on the model's device. Its shape, dtype and device are what
                the graph serves; its values only feed the warm-up and the capture.
            warmup: forward passes run on a side stream before the capture (>= 1). They let cuDNN and
                cuBLAS pick their kernels and allocate their workspaces, which must not happen during
                capture (the PyTorch docs require this warm-up on a side stream).

        Effects:
            ``self.model``, ``self.shape``, ``self.dtype``, ``self.device``, ``self.static_input`` (a copy
            of ``example``), ``self.graph`` (a ``torch.cuda.CUDAGraph`` holding one forward under
            ``torch.inference_mode()``) and ``self.static_output`` (the tensor that forward writes).

        Raises:
            TypeError: ``example`` is not a tensor, or the model does not return a tensor.
            ValueError: ``example`` or the model's weights are not on a CUDA device (the message says that
                CUDA graphs need a GPU), they are on two different devices, or ``warmup`` < 1.
            RuntimeError: the forward could not be captured (a host sync or CPU op inside it).

        Tolerance the grader applies (p3.gpu.cuda_graph_latency): the digits CNN at batch 1, TF32 off;
        your graph's outputs equal the eager model's within 1e-3 on fresh inputs (checked right after
        capture and on every timed call), and every returned tensor keeps its value after later calls.

        Guide: GPU_OPTIMIZATION_GUIDE.md#task-36-cuda-graphs-for-small-batch-latency
        """
        # Step 1: refuse what cannot be captured. example not a Tensor -> TypeError. example.device.type != "cuda",
        #   or the model's weights (_model_device(model)) not on CUDA -> ValueError("CUDA graphs need a GPU: ...");
        #   weights and example on two different devices, or warmup < 1 -> ValueError.
        #   Keep self.model, self.shape = tuple(example.shape), self.dtype, self.device = example.device.
        #   (Do steps 2-4 inside `with torch.cuda.device(self.device):`, so that "cuda:1" works too.)
        # Step 2: self.static_input = example.detach().clone(): a buffer the graph owns.
        # Step 3: warm up on a side stream: main = torch.cuda.current_stream(self.device);
        #   side = torch.cuda.Stream(device=self.device); side.wait_stream(main); then
        #   `with torch.cuda.stream(side), torch.inference_mode():` run model(self.static_input) `warmup` times;
        #   finally main.wait_stream(side).
        # Step 4: self.graph = torch.cuda.CUDAGraph(); then
        #   `with torch.cuda.graph(self.graph), torch.inference_mode(): out = model(self.static_input)`.
        #   Nothing runs here: the kernels are recorded. Wrap the capture in try/except RuntimeError and re-raise a
        #   RuntimeError that says why captures fail (a host sync or CPU op in the forward).
        #   out must be a tensor (TypeError otherwise): self.static_output = out.
        raise NotImplementedError("Task 3.6: see GPU_OPTIMIZATION_GUIDE.md#task-36-cuda-graphs-for-small-batch-latency")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Replay the captured forward on ``x``: the model's output, in a tensor of the caller's own.

        Args:
            x: ``[B, ...]`` with exactly the captured ``shape`` and ``dtype``, on ``self.device`` (a tensor
                on another device is copied over, which costs a transfer).

        Returns:
            The model's output for ``x`` (shape and dtype as the model returns them, on ``self.device``), a
            new tensor each call: later calls never change it.

        Raises:
            ValueError: ``x`` is not a tensor of the captured shape and dtype; the message names both the
                captured and the given shape and dtype.

        Tolerance the grader applies (p3.gpu.cuda_graph_latency): outputs within 1e-3 of the eager model on
        fresh inputs, every returned tensor unchanged by later calls; graded on eager p50 latency / your p50
        (each call synchronised, the two interleaved on the same inputs), against the thresholds in
        EXPECTED_OUTCOMES.md.

        Guide: GPU_OPTIMIZATION_GUIDE.md#task-36-cuda-graphs-for-small-batch-latency
        """
        # Step 1: x must be a tensor with tuple(x.shape) == self.shape and x.dtype == self.dtype, else
        #   ValueError naming the captured shape and dtype and the ones given (copy_ would silently convert a
        #   float64 input, and a wrong batch size would fail deep inside copy_).
        # Step 2: `with torch.cuda.device(self.device), torch.inference_mode():` self.static_input.copy_(x).
        # Step 3: self.graph.replay().
        # Step 4: return self.static_output.clone(): the next replay overwrites static_output in place.
        raise NotImplementedError("Task 3.6: see GPU_OPTIMIZATION_GUIDE.md#task-36-cuda-graphs-for-small-batch-latency")

    # -- helpers (written in full) ------------------------------------------------------------------
    def __repr__(self) -> str:
        shape = getattr(self, "shape", None)
        return f"GraphedModel({type(getattr(self, 'model', None)).__name__}, shape={shape}, dtype={getattr(self, 'dtype', None)})"
