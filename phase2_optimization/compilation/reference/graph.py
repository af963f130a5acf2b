# REFERENCE SOLUTION: excluded from the learner release (make release).
"""Task 2.8: graph optimizations by hand, in PyTorch and on the ONNX graph.

Batch-norm folding (the algebra), constant folding and no-op removal: the passes every inference
compiler runs first. Guide: COMPILATION_GUIDE.md#task-28-graph-optimizations-by-hand
"""
from __future__ import annotations

import copy
from collections import Counter

import numpy as np
import torch
from torch import nn

from ..types import GraphReport

__all__ = ["count_ops", "fold_conv_bn", "fold_batchnorm", "fold_batchnorm_onnx", "fold_constants",
           "remove_noops", "optimize_graph"]

#: Ops whose output is not a pure function of their inputs, and ops with subgraphs: never folded.
_NOT_FOLDABLE = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial",
                 "Bernoulli", "If", "Loop", "Scan"}


# ---------------------------------------------------------------------------------------------------
# Helpers (written in full)
# ---------------------------------------------------------------------------------------------------
def count_ops(model) -> dict[str, int]:
    """op_type -> number of nodes in the main graph of an ``onnx.ModelProto``."""
    return dict(Counter(n.op_type for n in model.graph.node))


def _consumers(graph) -> dict[str, list]:
    """tensor name -> the nodes that read it."""
    users: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            if name:
                users.setdefault(name, []).append(node)
    return users


def _prune_initializers(graph) -> None:
    """Drop initializers no node reads (folding leaves the old weights behind)."""
    used = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    keep = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)


def _rename(names, old: str, new: str) -> None:
    """Replace ``old`` by ``new`` in a repeated string field (a node's inputs or outputs)."""
    for i, name in enumerate(names):
        if name == old:
            names[i] = new


def _replace_node_list(graph, nodes) -> None:
    del graph.node[:]
    graph.node.extend(nodes)


# ---------------------------------------------------------------------------------------------------
# ## Task 2.8: graph optimizations by hand
# ---------------------------------------------------------------------------------------------------
def fold_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """Fold an eval-mode batch norm into the convolution before it: one conv computes both.

    ``bn(conv(x)) = gamma * (W*x + b - mean) / sqrt(var + eps) + beta``, so with
    ``s = gamma / sqrt(var + eps)`` (one factor per output channel) the folded conv has
    ``W' = W * s[:, None, None, None]`` and ``b' = (b - mean) * s + beta`` (``b = 0`` when the conv
    had no bias).

    Args:
        conv: an ``nn.Conv2d`` (any stride, padding, groups; bias or not).
        bn: the ``nn.BatchNorm2d`` that follows it, with running statistics (affine or not).

    Returns:
        A new ``nn.Conv2d`` (the inputs are left unchanged) with a bias, same dtype and device,
        in eval mode. Computed in float64, then cast back, to keep rounding small.

    Raises:
        ValueError: ``bn`` has no running statistics (``track_running_stats=False``) or its channel
            count differs from ``conv.out_channels``.

    Tolerance the grader applies: p2.compilation.bn_fold_torch, through ``fold_batchnorm``: max |folded -
    original| / max |original| <= 1e-5 (full marks 1e-6).

    Guide: COMPILATION_GUIDE.md#task-28-graph-optimizations-by-hand
    """
    # BEGIN SOLUTION
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError("batch norm without running statistics cannot be folded")
    if bn.num_features != conv.out_channels:
        raise ValueError(f"batch norm has {bn.num_features} channels, the conv {conv.out_channels}")
    w = conv.weight.detach().double()                                    # [M, C/g, kh, kw]
    b = conv.bias.detach().double() if conv.bias is not None else torch.zeros(conv.out_channels, dtype=torch.float64,
                                                                              device=w.device)
    gamma = bn.weight.detach().double() if bn.weight is not None else torch.ones_like(b)
    beta = bn.bias.detach().double() if bn.bias is not None else torch.zeros_like(b)
    s = gamma / torch.sqrt(bn.running_var.detach().double() + bn.eps)   # [M]
    folded = copy.deepcopy(conv).eval()
    folded.weight = nn.Parameter((w * s.reshape(-1, *([1] * (w.dim() - 1)))).to(conv.weight.dtype),
                                 requires_grad=False)
    folded.bias = nn.Parameter(((b - bn.running_mean.detach().double()) * s + beta).to(conv.weight.dtype),
                               requires_grad=False)
    return folded
    # END SOLUTION
    """ # BEGIN PROMPT
    # Step 1: ValueError if bn.running_mean / running_var is None or bn.num_features != conv.out_channels.
    # Step 2: in float64: w = conv.weight [M, C/g, kh, kw]; b = conv.bias or zeros(M); gamma = bn.weight or
    #   ones(M); beta = bn.bias or zeros(M); s = gamma / sqrt(running_var + eps)   # [M]
    # Step 3: folded = copy.deepcopy(conv).eval(); folded.weight = nn.Parameter((w * s.reshape(-1, 1, 1, 1))
    #   .to(conv.weight.dtype), requires_grad=False); folded.bias = nn.Parameter(((b - mean) * s + beta)
    #   .to(conv.weight.dtype), requires_grad=False); return folded.
    raise NotImplementedError("Task 2.8: see COMPILATION_GUIDE.md#task-28-graph-optimizations-by-hand")
    """  # END PROMPT


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """Fold every batch norm that directly follows a convolution, anywhere in a model.

    Args:
        model: an eval-mode module that ``torch.fx.symbolic_trace`` can trace (no data-dependent
            control flow). A pattern counts when a ``Conv2d`` module's output goes only to a
            ``BatchNorm2d`` module (nested ``nn.Sequential``, attributes such as ``self.conv1`` /
            ``self.bn1`` and residual blocks all qualify).

    Returns:
        A new module (a ``torch.fx.GraphModule``; ``model`` is left unchanged) with each such pair
        replaced by one folded conv and no ``BatchNorm2d`` left for them, in eval mode.

    Tolerance the grader applies: p2.compilation.bn_fold_torch: no BatchNorm module left (gate), your original
    model unchanged (gate), and max |folded - original| / max |original| <= 1e-5 (full marks 1e-6)
    on fresh inputs, with random batch-norm statistics drawn for each grade.

    Guide: COMPILATION_GUIDE.md#task-28-graph-optimizations-by-hand
    """
    # BEGIN SOLUTION
    gm = torch.fx.symbolic_trace(copy.deepcopy(model).eval())
    modules = dict(gm.named_modules())
    for node in list(gm.graph.nodes):
        if node.op != "call_module" or not isinstance(modules.get(node.target), nn.BatchNorm2d):
            continue
        prev = node.args[0]
        if not (isinstance(prev, torch.fx.Node) and prev.op == "call_module"
                and isinstance(modules.get(prev.target), nn.Conv2d) and len(prev.users) == 1):
            continue
        folded = fold_conv_bn(modules[prev.target], modules[node.target])
        parent_name, _, attr = prev.target.rpartition(".")
        setattr(gm.get_submodule(parent_name) if parent_name else gm, attr, folded)
        modules[prev.target] = folded
        node.replace_all_uses_with(prev)
        gm.graph.erase_node(node)
    gm.graph.lint()
    gm.delete_all_unused_submodules()
    gm.recompile()
    return gm.eval()
    # END SOLUTION
    """ # BEGIN PROMPT
    # Step 1: gm = torch.fx.symbolic_trace(copy.deepcopy(model).eval()); modules = dict(gm.named_modules()).
    # Step 2: for each node with node.op == "call_module" whose module is an nn.BatchNorm2d: prev = node.args[0];
    #   it qualifies when prev.op == "call_module", its module is an nn.Conv2d and len(prev.users) == 1.
    # Step 3: put fold_conv_bn(conv, bn) in place of the conv (setattr on its parent: prev.target.rpartition(".")),
    #   node.replace_all_uses_with(prev), gm.graph.erase_node(node).
    # Step 4: gm.graph.lint(); gm.delete_all_unused_submodules(); gm.recompile(); return gm.eval().
    raise NotImplementedError("Task 2.8: see COMPILATION_GUIDE.md#task-28-graph-optimizations-by-hand")
    """  # END PROMPT


def fold_batchnorm_onnx(model):
    """Fold every ``BatchNormalization`` node that follows a ``Conv`` node into that Conv's weights.

    Args:
        model: an ``onnx.ModelProto``. A pattern counts when a Conv (weight and optional bias are
            initializers) feeds only an inference-mode BatchNormalization (one output; scale, B,
            mean and var are initializers; attribute ``epsilon``, default 1e-5).

    Returns:
        A new ``onnx.ModelProto`` (the input is left unchanged): each folded Conv reads new
        initializers ``W' = W * s`` and ``b' = (b - mean) * s + B`` with ``s = scale / sqrt(var + eps)``
        (computed in float64, stored as float32) and writes the BatchNormalization's output name;
        the BatchNormalization nodes and the initializers nobody reads any more are gone.

    Tolerance the grader applies: p2.compilation.bn_fold_onnx, on a Conv/BatchNormalization graph built with
    fresh random statistics: no BatchNormalization left and fewer nodes (gates), ``onnx.checker``
    passes, and ONNX Runtime's outputs of both graphs agree within 1e-5 relative (full marks 1e-6).

    Guide: COMPILATION_GUIDE.md#task-28-graph-optimizations-by-hand
    """
    # BEGIN SOLUTION
    from onnx import numpy_helper

    model = copy.deepcopy(model)
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    users = _consumers(g)
    producer = {out: node for node in g.node for out in node.output}
    outputs = {o.name for o in g.output}
    drop = set()
    for bn in g.node:
        if bn.op_type != "BatchNormalization" or bn.domain not in ("", "ai.onnx") or len(bn.output) != 1:
            continue
        conv = producer.get(bn.input[0])
        if (conv is None or conv.op_type != "Conv" or len(users.get(bn.input[0], [])) != 1
                or bn.input[0] in outputs or any(name not in inits for name in list(bn.input[1:5]) + [conv.input[1]])
                or (len(conv.input) > 2 and conv.input[2] and conv.input[2] not in inits)):
            continue
        eps = next((a.f for a in bn.attribute if a.name == "epsilon"), 1e-5)
        gamma, beta, mean, var = (numpy_helper.to_array(inits[n]).astype(np.float64) for n in bn.input[1:5])
        w = numpy_helper.to_array(inits[conv.input[1]]).astype(np.float64)       # [M, C/g, kh, kw]
        b = (numpy_helper.to_array(inits[conv.input[2]]).astype(np.float64)
             if len(conv.input) > 2 and conv.input[2] else np.zeros(w.shape[0]))
        s = gamma / np.sqrt(var + eps)                                          # [M]
        base = conv.name or conv.output[0]
        w_init = numpy_helper.from_array((w * s.reshape(-1, *([1] * (w.ndim - 1)))).astype(np.float32),
                                         f"{base}_bnfold_W")
        b_init = numpy_helper.from_array(((b - mean) * s + beta).astype(np.float32), f"{base}_bnfold_B")
        g.initializer.extend([w_init, b_init])
        inits[w_init.name], inits[b_init.name] = w_init, b_init
        new_inputs = [conv.input[0], w_init.name, b_init.name]
        del conv.input[:]
        conv.input.extend(new_inputs)
        conv.output[0] = bn.output[0]
        drop.add(id(bn))
    _replace_node_list(g, [n for n in g.node if id(n) not in drop])
    _prune_initializers(g)
    # value_info of the removed intermediate tensors would be stale
    keep_vi = [v for v in g.value_info if v.name in {o for n in g.node for o in n.output}]
    del g.value_info[:]
    g.value_info.extend(keep_vi)
    return model
    # END SOLUTION
    """ # BEGIN PROMPT
    # Step 1: model = copy.deepcopy(model); g = model.graph; inits = {i.name: i for i in g.initializer};
    #   users = _consumers(g); producer = {out: node for node in g.node for out in node.output}.
    # Step 2: for each BatchNormalization node bn (one output): conv = producer.get(bn.input[0]); skip unless
    #   conv.op_type == "Conv", bn.input[0] has exactly one reader and is not a graph output, and W, the
    #   optional conv bias and bn.input[1:5] (scale, B, mean, var) are all initializers.
    # Step 3: eps from bn.attribute ("epsilon", default 1e-5); in float64 (numpy_helper.to_array):
    #   s = scale / sqrt(var + eps); W' = W * s[:, None, None, None]; b' = (b - mean) * s + B.
    # Step 4: add W' and b' as new float32 initializers (numpy_helper.from_array(array, new_name)), set the
    #   conv's inputs to [x, W', b'] and conv.output[0] = bn.output[0]; drop the bn node.
    # Step 5: _replace_node_list(g, kept_nodes); _prune_initializers(g); drop stale g.value_info; return model.
    raise NotImplementedError("Task 2.8: see COMPILATION_GUIDE.md#task-28-graph-optimizations-by-hand")
    """  # END PROMPT


def fold_constants(model):
    """Replace every node whose inputs are all constants by the constant it computes.

    Args:
        model: an ``onnx.ModelProto``. Constants are initializers that are not also graph inputs,
            and outputs of ``Constant`` nodes. Random ops and ops with subgraphs (If, Loop, Scan)
            are never folded, nor a node that writes a graph output.

    Returns:
        A new ``onnx.ModelProto``: ``Constant`` nodes become initializers, each foldable node is
        evaluated once (``onnx.reference.ReferenceEvaluator`` runs any standard op) and becomes an
        initializer named like its output; initializers nobody reads are dropped.

    Tolerance the grader applies: p2.compilation.graph_cleanup, through ``optimize_graph``.

    Guide: COMPILATION_GUIDE.md#task-28-graph-optimizations-by-hand
    """
    # BEGIN SOLUTION
    from onnx import numpy_helper
    from onnx.reference import ReferenceEvaluator

    model = copy.deepcopy(model)
    g = model.graph
    graph_inputs = {i.name for i in g.input}
    graph_outputs = {o.name for o in g.output}
    values = {i.name: numpy_helper.to_array(i) for i in g.initializer if i.name not in graph_inputs}
    opsets = {o.domain or "": o.version for o in model.opset_import}
    kept, new_inits = [], []
    for node in g.node:
        inputs = [n for n in node.input if n]
        foldable = (node.domain in ("", "ai.onnx") and node.op_type not in _NOT_FOLDABLE
                    and all(n in values for n in inputs) and not graph_outputs & set(node.output)
                    and (inputs or node.op_type == "Constant"))
        if not foldable:
            kept.append(node)
            continue
        results = ReferenceEvaluator(node, opsets={"": opsets.get("", 18)}).run(
            None, {n: values[n] for n in inputs})
        for name, value in zip(node.output, results):
            if name:
                values[name] = np.asarray(value)
                new_inits.append(numpy_helper.from_array(np.asarray(value), name))
    _replace_node_list(g, kept)
    g.initializer.extend(new_inits)
    _prune_initializers(g)
    return model
    # END SOLUTION
    """ # BEGIN PROMPT
    # Step 1: model = copy.deepcopy(model); values = {init.name: numpy_helper.to_array(init)} for the
    #   initializers that are not also graph inputs (an input can override them at run time).
    # Step 2: walk g.node in order (it is topological). A node folds when its domain is "" / "ai.onnx", it is not
    #   in _NOT_FOLDABLE, it writes no graph output, and every non-empty input is in values (a Constant node
    #   has no inputs: it always folds).
    # Step 3: results = onnx.reference.ReferenceEvaluator(node, opsets={"": <the model's opset>}).run(None, feed);
    #   store each output in values and as a new initializer (numpy_helper.from_array(value, output_name)).
    # Step 4: keep the nodes that did not fold; add the new initializers; _prune_initializers(g); return model.
    raise NotImplementedError("Task 2.8: see COMPILATION_GUIDE.md#task-28-graph-optimizations-by-hand")
    """  # END PROMPT


def _scalar_constant(inits: dict, name: str):
    """The value of a one-element initializer of rank 0 or 1, else None."""
    from onnx import numpy_helper

    if name not in inits:
        return None
    a = numpy_helper.to_array(inits[name])
    return a.reshape(()) if a.size == 1 and a.ndim <= 1 else None


def remove_noops(model):
    """Remove nodes that return their input unchanged, wiring their readers to that input.

    Args:
        model: an ``onnx.ModelProto``. No-ops: ``Identity``; ``Dropout`` whose mask output is
            unused (inference); ``Transpose`` whose ``perm`` is 0, 1, 2, ...; ``Add``/``Sub`` of a
            zero and ``Mul``/``Div`` by a one, where that constant is a one-element initializer of
            rank 0 or 1 (so broadcasting cannot change the shape; for Sub and Div, the second input).

    Returns:
        A new ``onnx.ModelProto`` without them. A no-op that writes a graph output is removed by
        renaming its input's producer instead (kept when its input is a graph input or initializer).

    Tolerance the grader applies: p2.compilation.graph_cleanup, through ``optimize_graph``.

    Guide: COMPILATION_GUIDE.md#task-28-graph-optimizations-by-hand
    """
    # BEGIN SOLUTION
    model = copy.deepcopy(model)
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    outputs = {o.name for o in g.output}
    sources = {i.name for i in g.input} | set(inits)

    def passthrough(node) -> str | None:
        """The input a no-op passes through, or None if the node does real work."""
        if node.domain not in ("", "ai.onnx"):
            return None
        op = node.op_type
        if op == "Identity":
            return node.input[0]
        if op == "Dropout" and (len(node.output) < 2 or not node.output[1] or not users.get(node.output[1])):
            return node.input[0]
        if op == "Transpose":
            perm = next((list(a.ints) for a in node.attribute if a.name == "perm"), None)
            return node.input[0] if perm is not None and perm == sorted(perm) else None
        if op in ("Add", "Mul", "Sub", "Div") and len(node.input) == 2:
            neutral = 0.0 if op in ("Add", "Sub") else 1.0
            sides = [(0, 1), (1, 0)] if op in ("Add", "Mul") else [(0, 1)]
            for keep, const in sides:
                c = _scalar_constant(inits, node.input[const])
                if c is not None and float(c) == neutral and node.input[keep] not in inits:
                    return node.input[keep]
        return None

    changed = True
    while changed:
        changed = False
        users = _consumers(g)
        for node in list(g.node):
            src = passthrough(node)
            if src is None:
                continue
            out = node.output[0]
            if out in outputs:
                if src in sources or src in outputs:
                    continue                                  # must keep a node to name the output
                for other in g.node:                          # rename the producer's output instead
                    _rename(other.output, src, out)
                    _rename(other.input, src, out)
            else:
                for other in users.get(out, []):
                    _rename(other.input, out, src)
            g.node.remove(node)
            changed = True
            break
    _prune_initializers(g)
    return model
    # END SOLUTION
    """ # BEGIN PROMPT
    # Step 1: model = copy.deepcopy(model); g = model.graph; inits, graph outputs, and "sources" (graph
    #   inputs + initializers).
    # Step 2: write passthrough(node) -> the input it passes through, or None: Identity; Dropout whose mask
    #   output is unused; Transpose with perm == sorted(perm); Add/Sub of 0, Mul/Div by 1, using
    #   _scalar_constant(inits, name) for the constant side (for Sub and Div only the second input).
    # Step 3: for a no-op node: if its output is a graph output, rename its input's producer (and readers) to
    #   that name with _rename (skip if the input is a graph input, initializer or another graph output);
    #   else point every reader of its output at its input (_rename over users[output]). Remove the node.
    # Step 4: repeat until nothing changes (recompute users = _consumers(g) after each removal);
    #   _prune_initializers(g); return model.
    raise NotImplementedError("Task 2.8: see COMPILATION_GUIDE.md#task-28-graph-optimizations-by-hand")
    """  # END PROMPT


def optimize_graph(model):
    """Run the passes to a fixed point and report the node counts.

    Args:
        model: an ``onnx.ModelProto``.

    Returns:
        ``(optimized, GraphReport)``: a new model after ``remove_noops``, ``fold_batchnorm_onnx``
        and ``fold_constants`` repeated until a round removes nothing (constant folding can expose
        new no-ops, such as a ``Mul`` by a constant that folds to 1), checked with
        ``onnx.checker``; the report holds node and op counts before and after and what each pass
        removed, in order.

    Tolerance the grader applies: p2.compilation.graph_cleanup, on a graph with identities, a dropout, batch
    norms and constant subgraphs: the share of removable nodes you removed >= 75 % (full marks
    100 %), outputs within 1e-5 relative of the original, ``onnx.checker`` passes, and your
    report's node counts equal the grader's count of both graphs (gates).

    Guide: COMPILATION_GUIDE.md#task-28-graph-optimizations-by-hand
    """
    # BEGIN SOLUTION
    import onnx

    before = count_ops(model)
    passes: list[tuple[str, int]] = []
    current = model
    while True:
        removed_this_round = 0
        for name, fn in (("remove_noops", remove_noops), ("fold_batchnorm_onnx", fold_batchnorm_onnx),
                         ("fold_constants", fold_constants)):
            n0 = len(current.graph.node)
            current = fn(current)
            removed = n0 - len(current.graph.node)
            passes.append((name, removed))
            removed_this_round += removed
        if removed_this_round == 0:
            break
    onnx.checker.check_model(current)
    after = count_ops(current)
    return current, GraphReport(nodes_before=sum(before.values()), nodes_after=sum(after.values()),
                                ops_before=before, ops_after=after, passes=passes)
    # END SOLUTION
    """ # BEGIN PROMPT
    # Step 1: before = count_ops(model).
    # Step 2: repeat rounds of remove_noops -> fold_batchnorm_onnx -> fold_constants, recording
    #   (pass name, nodes removed) for each, until a whole round removes nothing.
    # Step 3: onnx.checker.check_model(result); after = count_ops(result).
    # Step 4: return result, GraphReport(nodes_before=sum(before.values()), nodes_after=sum(after.values()),
    #   ops_before=before, ops_after=after, passes=passes).
    raise NotImplementedError("Task 2.8: see COMPILATION_GUIDE.md#task-28-graph-optimizations-by-hand")
    """  # END PROMPT
