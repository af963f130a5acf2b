# REFERENCE SOLUTION: excluded from the learner release (make release).
"""Task 2.7: export a PyTorch model to ONNX, validate the file, and compare it with PyTorch.

Guide: COMPILATION_GUIDE.md#task-27-export-to-onnx-with-a-dynamic-batch
"""
from __future__ import annotations

import os
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from ..types import ExportComparison, ExportConfig, OnnxInfo

__all__ = ["export_onnx", "check_onnx", "compare_with_pytorch"]


# ---------------------------------------------------------------------------------------------------
# ## Task 2.7: export to ONNX with a dynamic batch
# ---------------------------------------------------------------------------------------------------
def export_onnx(model: torch.nn.Module, example_input: torch.Tensor, path: str | os.PathLike,
                config: ExportConfig | None = None) -> Path:
    """Export ``model`` to an ONNX file whose batch dimension is symbolic.

    Args:
        model: a PyTorch module (put in eval mode before exporting: batch norm and dropout are
            recorded in whatever mode they are in).
        example_input: float32 ``[B, C, H, W]`` used to trace/export. With a dynamic batch and
            ``B == 1`` it is repeated to ``B = 2`` first: torch.export specialises a size of 1.
        path: the ``.onnx`` file to write (parent folders are created).
        config: ``ExportConfig`` (opset, dynamic batch, names, which exporter); None = defaults.

    Returns:
        The path written, as a ``Path``. The file holds one input ``config.input_name``
        (``[batch, C, H, W]`` float32) and one output ``config.output_name`` (``[batch, classes]``),
        weights inside the file (no external data).

    Tolerance the grader applies: p2.compilation.export_equivalent, the grader's own ONNX Runtime session of
    your file on the digits test split against eager PyTorch: 100 % top-1 agreement (gate) and
    max |difference| <= 1e-4 (full marks 2e-5); p2.compilation.export_dynamic_batch, every batch size 1..32
    runs through the one file and matches (100 %). The file must pass ``onnx.checker`` (full check).

    Guide: COMPILATION_GUIDE.md#task-27-export-to-onnx-with-a-dynamic-batch
    """
    # BEGIN SOLUTION
    config = config or ExportConfig()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    x = example_input.detach().float()
    if config.dynamic_batch and x.shape[0] == 1:          # a size of 1 would be specialised
        x = torch.cat([x, x])
    names = dict(input_names=[config.input_name], output_names=[config.output_name],
                 opset_version=config.opset)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        if config.dynamo:
            dyn = ({0: "batch"},) if config.dynamic_batch else None
            torch.onnx.export(model, (x,), str(path), dynamic_shapes=dyn, dynamo=True,
                              external_data=False, verbose=False, **names)
        else:
            axes = ({config.input_name: {0: "batch"}, config.output_name: {0: "batch"}}
                    if config.dynamic_batch else None)
            torch.onnx.export(model, (x,), str(path), dynamic_axes=axes, dynamo=False,
                              do_constant_folding=True, **names)
    return path
    # END SOLUTION
    """ # BEGIN PROMPT
    # Step 1: config = config or ExportConfig(); make the parent folder; model.eval().
    # Step 2: with a dynamic batch and a batch-1 example, repeat it to batch 2 (torch.cat([x, x])): an
    #   exporter can specialise a dimension of size 1 and fix it in the graph.
    # Step 3: config.dynamo -> torch.onnx.export(model, (x,), str(path), dynamo=True,
    #   dynamic_shapes=({0: "batch"},) or None, input_names=[...], output_names=[...],
    #   opset_version=config.opset, external_data=False, verbose=False).
    #   Otherwise the legacy tracer: dynamo=False, dynamic_axes={input: {0: "batch"}, output: {0: "batch"}},
    #   do_constant_folding=True. Do it under torch.no_grad() (and silence the exporters' warnings).
    # Step 4: return Path(path).
    raise NotImplementedError("Task 2.7: see COMPILATION_GUIDE.md#task-27-export-to-onnx-with-a-dynamic-batch")
    """  # END PROMPT


def check_onnx(path: str | os.PathLike) -> OnnxInfo:
    """Validate an ONNX file with the ONNX checker and describe it.

    Args:
        path: an ``.onnx`` file.

    Returns:
        ``OnnxInfo``: the default-domain opset, input and output shapes (a symbolic dimension is
        its name, a fixed one its int; an unnamed unknown dimension is ``"?"``), the node count and
        the op_type counts of the main graph.

    Raises:
        FileNotFoundError: the file does not exist (the message names it).
        onnx.checker.ValidationError: the model is invalid (``onnx.checker.check_model`` with
            ``full_check=True``, which also runs strict shape inference).

    Tolerance the grader applies: none directly; p2.compilation.export_equivalent runs the same checker on
    your exported file.

    Guide: COMPILATION_GUIDE.md#task-27-export-to-onnx-with-a-dynamic-batch
    """
    # BEGIN SOLUTION
    import onnx

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no ONNX file at {path}")
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)

    def dims(value_info) -> list[int | str]:
        out: list[int | str] = []
        for d in value_info.type.tensor_type.shape.dim:
            out.append(d.dim_value if d.HasField("dim_value") else (d.dim_param or "?"))
        return out

    initializers = {i.name for i in model.graph.initializer}
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    return OnnxInfo(
        opset=int(opset),
        inputs={i.name: dims(i) for i in model.graph.input if i.name not in initializers},
        outputs={o.name: dims(o) for o in model.graph.output},
        num_nodes=len(model.graph.node),
        op_counts=dict(Counter(n.op_type for n in model.graph.node)),
    )
    # END SOLUTION
    """ # BEGIN PROMPT
    # Step 1: a missing file -> FileNotFoundError naming it; model = onnx.load(str(path)).
    # Step 2: onnx.checker.check_model(model, full_check=True) (let its ValidationError propagate).
    # Step 3: each dim of graph.input / graph.output: d.dim_value if d.HasField("dim_value") else
    #   (d.dim_param or "?"); leave out inputs that are also initializers (old exporters list weights).
    # Step 4: opset = the version of the opset_import whose domain is "" (or "ai.onnx");
    #   op_counts = Counter(n.op_type for n in model.graph.node); return OnnxInfo(...).
    raise NotImplementedError("Task 2.7: see COMPILATION_GUIDE.md#task-27-export-to-onnx-with-a-dynamic-batch")
    """  # END PROMPT


def compare_with_pytorch(model: torch.nn.Module, onnx_path: str | os.PathLike, images: torch.Tensor,
                         labels: torch.Tensor | None = None, *, batch_size: int = 32) -> ExportComparison:
    """Run the same images through eager PyTorch and through the ONNX file; compare the logits.

    Args:
        model: the PyTorch module (called in eval mode under ``torch.inference_mode()``).
        onnx_path: the ONNX file, run with ONNX Runtime's CPUExecutionProvider and
            ``intra_op_num_threads = torch.get_num_threads()``.
        images: float32 ``[N, C, H, W]``.
        labels: int64 ``[N]`` class labels, or None (then both accuracies are None).
        batch_size: images per call (the last batch may be smaller), >= 1.

    Returns:
        ``ExportComparison``: ``max_abs_diff`` = max |onnx - eager| over all N x classes logits,
        ``top1_agreement`` = share of the N images whose arg-max agrees (0..1), ``num_samples`` = N,
        and the top-1 accuracy of each side (0..1) when labels are given.

    Raises:
        ValueError: ``batch_size < 1``, or no images (N = 0: there is nothing to compare), before
            ONNX Runtime is opened.

    Tolerance the grader applies: p2.compilation.export_compare hands you a model and an ONNX file that differ
    by a known amount; your ``max_abs_diff`` must be within 1 % of the grader's own figure (full
    marks 0.1 %), ``top1_agreement`` and ``num_samples`` exact.

    Guide: COMPILATION_GUIDE.md#task-27-export-to-onnx-with-a-dynamic-batch
    """
    # BEGIN SOLUTION
    import onnxruntime as ort

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if int(images.shape[0]) == 0:
        raise ValueError("no images to compare (images has 0 rows)")
    so = ort.SessionOptions()
    so.intra_op_num_threads = torch.get_num_threads()
    session = ort.InferenceSession(str(onnx_path), sess_options=so, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    model = model.eval()
    worst, agree, right_eager, right_onnx = 0.0, 0, 0, 0
    n = int(images.shape[0])
    for i in range(0, n, batch_size):
        x = images[i:i + batch_size].float()
        with torch.inference_mode():
            want = model(x).float().numpy()                     # [b, classes]
        got = session.run(None, {name: x.numpy()})[0]            # [b, classes]
        worst = max(worst, float(np.abs(got - want).max()))
        agree += int((got.argmax(1) == want.argmax(1)).sum())
        if labels is not None:
            y = labels[i:i + batch_size].numpy()
            right_eager += int((want.argmax(1) == y).sum())
            right_onnx += int((got.argmax(1) == y).sum())
    return ExportComparison(
        max_abs_diff=worst, top1_agreement=agree / n, num_samples=n,
        accuracy_eager=right_eager / n if labels is not None else None,
        accuracy_onnx=right_onnx / n if labels is not None else None,
    )
    # END SOLUTION
    """ # BEGIN PROMPT
    # Step 1: batch_size < 1 or no images -> ValueError. One onnxruntime.InferenceSession(str(onnx_path), sess_options=so,
    #   providers=["CPUExecutionProvider"]) with so.intra_op_num_threads = torch.get_num_threads().
    # Step 2: for each batch images[i:i + batch_size]: eager logits under torch.inference_mode() (model.eval()),
    #   onnx logits = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0].
    # Step 3: keep the running max of |onnx - eager|, the count of equal arg-maxes, and (with labels) the
    #   count of correct arg-maxes on each side.
    # Step 4: return ExportComparison(max_abs_diff, agree / n, n, accuracy_eager, accuracy_onnx) (None
    #   accuracies without labels).
    raise NotImplementedError("Task 2.7: see COMPILATION_GUIDE.md#task-27-export-to-onnx-with-a-dynamic-batch")
    """  # END PROMPT
