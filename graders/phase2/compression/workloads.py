"""What the compression criteria compare learner code against, built by the grader.

Nothing here comes from the learner or from the reference: the trained digits ResNet-18 and its splits
(shared with the quantization criteria), parameter and FLOP counts, and the channel mapping that decides
whether a "pruned" network is really the original minus some channels. The learner's pruned and
fine-tuned networks are built once per grading process and shared by the criteria that need them.
"""
from __future__ import annotations

import copy
import random

import torch
from torch import nn
from labdata.catalog import count_flops, count_params

from ...checks import expect
from ...harness import threads
from ..quantization.workloads import cached, digits, learner_timing, sqnr, top1_pct

__all__ = ["cached", "digits", "learner_timing", "sqnr", "top1_pct", "cost", "params_of", "eager",
           "KEEP_RATIO", "learner_pruned", "learner_fine_tuned", "resnet_blocks", "state_snapshot", "unchanged"]

#: The keep ratio the grader asks for: half the inner channels of every residual block.
KEEP_RATIO = 0.5


def params_of(model: nn.Module) -> int:
    """Parameters of ``model`` (buffers not counted): the course's one count, ``labdata.catalog.count_params``."""
    return count_params(model)


def cost(model: nn.Module, example: torch.Tensor) -> tuple[int, int]:
    """(parameters, forward FLOPs of one sample), the grader's own count: ``labdata.catalog``'s (FlopCounterMode,
    a multiply-add is 2), run in eval mode and the model's mode restored."""
    was = model.training
    model.eval()
    try:
        flops = count_flops(model, example[:1])
    finally:
        model.train(was)
    return params_of(model), flops


def eager(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return model(x)


def state_snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def unchanged(model: nn.Module, snapshot: dict[str, torch.Tensor]) -> bool:
    now = model.state_dict()
    return now.keys() == snapshot.keys() and all(torch.equal(now[k], v) for k, v in snapshot.items())


def resnet_blocks(model: nn.Module) -> dict[str, nn.Module]:
    """Residual blocks by name (modules holding conv1/bn1/conv2, torchvision's layout)."""
    return {name: m for name, m in model.named_modules()
            if all(isinstance(getattr(m, a, None), nn.Module) for a in ("conv1", "bn1", "conv2")) and name}


def learner_pruned(learner) -> dict:
    """The learner's ``prune_resnet_channels(copy of the digits ResNet-18, KEEP_RATIO)``, once per process."""
    def build():
        d = digits()
        original = copy.deepcopy(d["model"]).eval()
        before = state_snapshot(original)
        pruned = learner.call("prune_resnet_channels", original, KEEP_RATIO)
        expect(isinstance(pruned, nn.Module), "prune_resnet_channels should return an nn.Module")
        expect(unchanged(original, before), "prune_resnet_channels changed the model it was given: prune a copy")
        expect(pruned is not original, "prune_resnet_channels returned the model it was given: prune a copy")
        return {"original": original, "pruned": pruned.eval()}

    return cached("pruned", build)


def learner_fine_tuned(learner) -> dict:
    """The pruned network, its BatchNorm recalibrated by the learner's ``recalibrate_batchnorm`` and then fine-tuned
    by their ``fine_tune`` with ``FineTuneConfig(seed=<random>)`` on the train split, on one thread, and its top-1
    after each step on the test split (the grader's count), once per process."""
    def build():
        d = digits()
        base = learner_pruned(learner)
        pruned = copy.deepcopy(base["pruned"])
        seed = random.SystemRandom().randrange(2**16)
        config = learner.attr("FineTuneConfig")(seed=seed)
        train_x, train_y = d["train_x"], d["train_y"]
        # One thread: training with as many threads as cores slowed 7x or more beside a busy neighbour (OpenMP
        # threads waiting for the core the neighbour holds), past the time limit; one thread kept its quiet speed.
        with threads(1):
            recal = learner.call("recalibrate_batchnorm", pruned, train_x.clone())
            expect(isinstance(recal, nn.Module), "recalibrate_batchnorm should return the model")
            recal.eval()
            recal_acc = top1_pct(lambda x: learner.call_obj(recal, x, what="your recalibrated model"), d["test_x"],
                                 d["test_y"])
            tuned = learner.call("fine_tune", recal, train_x.clone(), train_y.clone(), config)
        expect(isinstance(tuned, nn.Module), "fine_tune should return the model")
        tuned.eval()
        acc = top1_pct(lambda x: learner.call_obj(tuned, x, what="your fine-tuned model"), d["test_x"], d["test_y"])
        return {"model": tuned, "accuracy": acc, "recalibrated_accuracy": recal_acc, "seed": seed,
                "epochs": config.epochs}

    return cached("fine_tuned", build)
