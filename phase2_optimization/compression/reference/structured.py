# REFERENCE SOLUTION: excluded from the learner release (make release).
"""Task 2.13: structured channel pruning: rank channels, rebuild a genuinely smaller ResNet (fewer conv
channels, the BatchNorm and the next layer's inputs cut to match), count what it costs, fine-tune it.

Guide: COMPRESSION_GUIDE.md#task-213-structured-channel-pruning
"""
from __future__ import annotations

import copy
from typing import Callable

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from torchvision.models.resnet import BasicBlock, Bottleneck

from ..types import FineTuneConfig, ModelCost
from ..training import make_optimizer, thread_budget, training_batches

__all__ = ["channel_importance", "prune_channels", "prune_resnet_channels", "count_cost", "recalibrate_batchnorm",
           "fine_tune"]


# ---------------------------------------------------------------------------------------------------
# ## Task 2.13: structured channel pruning
# ---------------------------------------------------------------------------------------------------
def channel_importance(conv: nn.Conv2d) -> torch.Tensor:
    """How much each output channel of ``conv`` matters: the L1 norm of its filter.

    Args:
        conv: a ``nn.Conv2d`` (read only).

    Returns:
        float32 [out_channels]: ``sum |weight[c]|`` over (in_channels, kH, kW) for each output channel c.

    Guide: COMPRESSION_GUIDE.md#task-213-structured-channel-pruning
    """
    # BEGIN SOLUTION
    # Step 1: |weight| summed over every axis but the first.
    return conv.weight.detach().abs().sum(dim=(1, 2, 3)).float()
    # END SOLUTION
    """ # BEGIN PROMPT
    # Step 1: |weight| summed over every axis but the first.
    raise NotImplementedError("Task 2.13: see COMPRESSION_GUIDE.md#task-213-structured-channel-pruning")
    """  # END PROMPT


def prune_channels(conv: nn.Conv2d, bn: nn.BatchNorm2d, next_conv: nn.Conv2d,
                   keep: torch.Tensor) -> tuple[nn.Conv2d, nn.BatchNorm2d, nn.Conv2d]:
    """Keep only output channels ``keep`` of ``conv``, and cut ``bn`` and ``next_conv``'s inputs to match.

    Args:
        conv: produces the channels (groups=1).
        bn: normalises them (``num_features == conv.out_channels``).
        next_conv: consumes them (``in_channels == conv.out_channels``, groups=1).
        keep: int64 [k], the channel indices to keep, ascending, unique.

    Returns:
        New ``(conv', bn', next_conv')``: ``conv'`` has k output channels (weight rows and bias entries
        ``keep``), ``bn'`` has k features (weight, bias, running_mean, running_var at ``keep``; eps,
        momentum, num_batches_tracked copied), ``next_conv'`` has k input channels (weight columns ``keep``,
        bias unchanged). Every other attribute (kernel, stride, padding, dilation, bias or not, dtype,
        device) is as before. The inputs are left unchanged.

    Raises:
        ValueError: grouped convolutions, or sizes that do not chain.

    Tolerance the grader applies (p2.compression.structured_exact): before fine-tuning, your pruned model
    must compute what the original computes with the dropped channels silenced, to 1e-4.

    Guide: COMPRESSION_GUIDE.md#task-213-structured-channel-pruning
    """
    # BEGIN SOLUTION
    # Step 1: check groups == 1 and that conv -> bn -> next_conv chain.
    if conv.groups != 1 or next_conv.groups != 1:
        raise ValueError("grouped convolutions are not supported")
    if not conv.out_channels == bn.num_features == next_conv.in_channels:
        raise ValueError(f"sizes do not chain: conv out {conv.out_channels}, bn {bn.num_features}, "
                         f"next conv in {next_conv.in_channels}")
    keep = torch.as_tensor(keep, dtype=torch.long, device=conv.weight.device)
    k = len(keep)
    w = conv.weight.detach()
    # Step 2: a new Conv2d with k outputs: weight[keep] (and bias[keep]).
    new_conv = nn.Conv2d(conv.in_channels, k, conv.kernel_size, conv.stride, conv.padding, conv.dilation,
                         bias=conv.bias is not None, padding_mode=conv.padding_mode, device=w.device, dtype=w.dtype)
    with torch.no_grad():
        new_conv.weight.copy_(w[keep])
        if conv.bias is not None:
            new_conv.bias.copy_(conv.bias[keep])
    # Step 3: a new BatchNorm2d(k): affine parameters and running statistics at keep.
    new_bn = nn.BatchNorm2d(k, eps=bn.eps, momentum=bn.momentum, affine=bn.affine,
                            track_running_stats=bn.track_running_stats, device=w.device, dtype=w.dtype)
    with torch.no_grad():
        if bn.affine:
            new_bn.weight.copy_(bn.weight[keep])
            new_bn.bias.copy_(bn.bias[keep])
        if bn.track_running_stats:
            new_bn.running_mean.copy_(bn.running_mean[keep])
            new_bn.running_var.copy_(bn.running_var[keep])
            new_bn.num_batches_tracked.copy_(bn.num_batches_tracked)
    # Step 4: a new next Conv2d with k inputs: weight[:, keep], same bias.
    nw = next_conv.weight.detach()
    new_next = nn.Conv2d(k, next_conv.out_channels, next_conv.kernel_size, next_conv.stride, next_conv.padding,
                         next_conv.dilation, bias=next_conv.bias is not None, padding_mode=next_conv.padding_mode,
                         device=nw.device, dtype=nw.dtype)
    with torch.no_grad():
        new_next.weight.copy_(nw[:, keep])
        if next_conv.bias is not None:
            new_next.bias.copy_(next_conv.bias)
    new_conv.train(conv.training), new_bn.train(bn.training), new_next.train(next_conv.training)
    return new_conv, new_bn, new_next
    # END SOLUTION
    """ # BEGIN PROMPT
    # Step 1: check groups == 1 and that conv -> bn -> next_conv chain.
    # Step 2: a new Conv2d with k outputs: weight[keep] (and bias[keep]).
    # Step 3: a new BatchNorm2d(k): affine parameters and running statistics at keep.
    # Step 4: a new next Conv2d with k inputs: weight[:, keep], same bias.
    raise NotImplementedError("Task 2.13: see COMPRESSION_GUIDE.md#task-213-structured-channel-pruning")
    """  # END PROMPT


def prune_resnet_channels(model: nn.Module, keep_ratio: float, *,
                          importance: Callable[[nn.Conv2d], torch.Tensor] | None = None) -> nn.Module:
    """A copy of a torchvision ResNet with the inner channels of every residual block pruned.

    Only channels that no residual addition depends on are removed: in a ``BasicBlock`` the output of
    ``conv1`` (so ``conv1``, ``bn1``, ``conv2``'s inputs); in a ``Bottleneck`` the outputs of ``conv1``
    and of ``conv2``. Block outputs, the stem and ``downsample`` keep their width, so every addition still
    lines up.

    Args:
        model: a torchvision ResNet (any module holding ``BasicBlock`` / ``Bottleneck`` blocks), unchanged.
        keep_ratio: fraction of each pruned layer's channels to keep, in (0, 1]: ``max(1, round(keep_ratio * C))``.
        importance: ranks a conv's output channels, higher = keep; default ``channel_importance``.

    Returns:
        The pruned deep copy, in the input model's train/eval mode; the kept channels of each layer are the
        most important ones, in ascending index order.

    Raises:
        ValueError: ``keep_ratio`` outside (0, 1], or no residual block found.

    Tolerance the grader applies (p2.compression.structured_exact, keep_ratio 0.5 on the digits ResNet-18):
    a FLOP cut of at least 40 %, counted by the grader; your ``count_cost`` must count what it counts.

    Guide: COMPRESSION_GUIDE.md#task-213-structured-channel-pruning
    """
    # BEGIN SOLUTION
    # Step 1: validate; deep copy; the default importance.
    if not 0.0 < keep_ratio <= 1.0:
        raise ValueError(f"keep_ratio must be in (0, 1], got {keep_ratio}")
    rank = importance or channel_importance
    pruned = copy.deepcopy(model)

    def keep_of(conv: nn.Conv2d) -> torch.Tensor:
        k = max(1, round(keep_ratio * conv.out_channels))
        return torch.topk(rank(conv), k).indices.sort().values

    # Step 2: every BasicBlock: (conv1, bn1, conv2); every Bottleneck: (conv1, bn1, conv2) then (conv2, bn2, conv3).
    blocks = [m for m in pruned.modules() if isinstance(m, (BasicBlock, Bottleneck))]
    if not blocks:
        raise ValueError("no torchvision BasicBlock or Bottleneck found: prune_resnet_channels prunes ResNets")
    for block in blocks:
        block.conv1, block.bn1, block.conv2 = prune_channels(block.conv1, block.bn1, block.conv2, keep_of(block.conv1))
        if isinstance(block, Bottleneck):
            block.conv2, block.bn2, block.conv3 = prune_channels(block.conv2, block.bn2, block.conv3,
                                                                 keep_of(block.conv2))
    return pruned
    # END SOLUTION
    """ # BEGIN PROMPT
    # Step 1: validate; deep copy; the default importance.
    # Step 2: every BasicBlock: (conv1, bn1, conv2); every Bottleneck: (conv1, bn1, conv2) then (conv2, bn2, conv3).
    raise NotImplementedError("Task 2.13: see COMPRESSION_GUIDE.md#task-213-structured-channel-pruning")
    """  # END PROMPT


def count_cost(model: nn.Module, example: torch.Tensor) -> ModelCost:
    """Parameters and forward FLOPs per sample.

    Args:
        model: any model (its train/eval mode is restored after).
        example: one input batch; only its first sample is used: float32 [1, C, H, W] is run.

    Returns:
        ``ModelCost(params = sum of every parameter's numel, flops = FlopCounterMode's total for one
        sample)``. Zeros count: a zeroed weight still costs its multiply-add in a dense kernel.

    Guide: COMPRESSION_GUIDE.md#task-213-structured-channel-pruning
    """
    # BEGIN SOLUTION
    # Step 1: params: sum(p.numel()).
    params = sum(p.numel() for p in model.parameters())
    # Step 2: FLOPs: run example[:1] in eval mode under FlopCounterMode(display=False); restore the mode.
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(example[:1])
    finally:
        model.train(was_training)
    return ModelCost(params=int(params), flops=int(counter.get_total_flops()))
    # END SOLUTION
    """ # BEGIN PROMPT
    # Step 1: params: sum(p.numel()).
    # Step 2: FLOPs: run example[:1] in eval mode under FlopCounterMode(display=False); restore the mode.
    raise NotImplementedError("Task 2.13: see COMPRESSION_GUIDE.md#task-213-structured-channel-pruning")
    """  # END PROMPT


def recalibrate_batchnorm(model: nn.Module, x: torch.Tensor, batch_size: int = 64) -> nn.Module:
    """Re-estimate every BatchNorm's running statistics on ``x`` after surgery; return ``model`` in eval mode.

    Pruning channels changes what every later layer sees, so the running means and variances recorded during
    training no longer describe the activations: the digits ResNet-18 pruned at keep_ratio 0.5 answers one class
    for everything (about 10 % top-1) until its statistics are re-estimated, and about 98 % after. No weight
    changes: this is a forward pass over data, not training.

    Args:
        model: changed in place (its BatchNorm buffers only).
        x: float32 [N, C, H, W] images from the training split (never the test split).
        batch_size: images per forward pass.

    Every ``nn.BatchNorm2d``: ``reset_running_stats()`` and ``momentum = None`` (a cumulative average over all
    batches, not an exponential one); ``model.train()`` and forward passes under ``torch.no_grad()``; then each
    momentum restored and ``model.eval()``.

    Guide: COMPRESSION_GUIDE.md#task-213-structured-channel-pruning
    """
    # BEGIN SOLUTION
    # Step 1: every BatchNorm2d: reset_running_stats(), remember its momentum, set momentum = None.
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    # Step 2: train() mode, forward passes over x in batches under torch.no_grad().
    model.train()
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            model(x[start:start + batch_size])
    # Step 3: restore each momentum; eval() and return the model.
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    return model.eval()
    # END SOLUTION
    """ # BEGIN PROMPT
    # Step 1: every BatchNorm2d: reset_running_stats(), remember its momentum, set momentum = None.
    # Step 2: train() mode, forward passes over x in batches under torch.no_grad().
    # Step 3: restore each momentum; eval() and return the model.
    raise NotImplementedError("Task 2.13: see COMPRESSION_GUIDE.md#task-213-structured-channel-pruning")
    """  # END PROMPT


def fine_tune(model: nn.Module, x: torch.Tensor, y: torch.Tensor, config: FineTuneConfig | None = None) -> nn.Module:
    """Train ``model`` in place on images ``x`` [N, C, H, W] float32 and labels ``y`` [N] int64, briefly, to
    recover the accuracy pruning cost; return it in eval mode.

    Args:
        model: the pruned (and recalibrated) network, trained in place.
        x: float32 [N, C, H, W] training images.
        y: int64 [N] labels.
        config: epochs, learning rate, batch size, shifts, seed, threads; default ``FineTuneConfig()``.

    Returns:
        ``model`` itself, in eval mode.

    Uses the helpers: ``training_batches`` (seeded order and shifts), ``make_optimizer`` (AdamW, one-cycle),
    ``thread_budget``; cross-entropy loss; ``torch.manual_seed(config.seed)`` first.

    Tolerance the grader applies (p2.compression.structured_accuracy): the pruned digits ResNet-18, its
    BatchNorm recalibrated (``recalibrate_batchnorm``) and fine-tuned with ``FineTuneConfig(seed=...)`` (4 epochs,
    peak learning rate 3e-4) on the train split, within 1 pt of the unpruned model's top-1 on the test split.

    Guide: COMPRESSION_GUIDE.md#task-213-structured-channel-pruning
    """
    # BEGIN SOLUTION
    # Step 1: the config (default FineTuneConfig()), the seed, a generator seeded with it, the optimizer.
    config = config or FineTuneConfig()
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    opt, sched = make_optimizer(model, config, len(y))
    # Step 2: train(); per epoch and batch: zero_grad, cross_entropy, backward, opt.step(), sched.step().
    with thread_budget(config.threads):
        model.train()
        for _ in range(config.epochs):
            for xb, yb in training_batches(x, y, config, gen):
                opt.zero_grad(set_to_none=True)
                nn.functional.cross_entropy(model(xb), yb).backward()
                opt.step()
                sched.step()
    # Step 3: eval() and return the model.
    return model.eval()
    # END SOLUTION
    """ # BEGIN PROMPT
    # Step 1: the config (default FineTuneConfig()), the seed, a generator seeded with it, the optimizer.
    # Step 2: train(); per epoch and batch: zero_grad, cross_entropy, backward, opt.step(), sched.step().
    # Step 3: eval() and return the model.
    raise NotImplementedError("Task 2.13: see COMPRESSION_GUIDE.md#task-213-structured-channel-pruning")
    """  # END PROMPT
