"""Task 2.15: knowledge distillation: Hinton's loss exactly (value, gradient, no gradient into the teacher), and
what it buys: the same small student trained on 50 labelled images with and without the teacher, in one run.

The gain is graded on the test split's cross-entropy, which the teacher's soft targets cut by 28-63 % over 21
random subsets; the top-1 gain (0.6-6.4 points over the same subsets, 359 test images) is reported beside it
(phase2_optimization/CALIBRATION.md)."""
from __future__ import annotations

import copy
import dataclasses
import random

import torch
import torch.nn.functional as F

from ...checks import as_tensor, expect
from ...harness import threads
from ...plugin import criterion
from .workloads import digits, params_of, state_snapshot, unchanged

#: Relative tolerance on the loss value and on its gradient.
KD_TOL = 1e-5


def _kd(s, t, y, temperature, alpha):
    """The grader's own Hinton loss: alpha T^2 KL(p_t || p_s) + (1 - alpha) CE, in float64."""
    ls, lt = F.log_softmax(s / temperature, -1), F.log_softmax(t / temperature, -1)
    kl = (lt.exp() * (lt - ls)).sum(-1).mean()
    return alpha * temperature ** 2 * kl + (1 - alpha) * F.cross_entropy(s, y)


@criterion("p2.compression.kd_loss")
def test_kd_loss(grade, learner):
    rng = random.SystemRandom()
    gen = torch.Generator().manual_seed(rng.randrange(2**31))
    cases = [(1.0, 0.5), (4.0, 0.9), (8.0, 0.3), (2.0, 1.0), (3.0, 0.0)]
    problems, worst = [], 0.0
    for temperature, alpha in cases:
        s = (torch.randn(16, 10, generator=gen) * 3).double()
        t = (torch.randn(16, 10, generator=gen) * 5).double()
        y = torch.randint(0, 10, (16,), generator=gen)
        want_s = s.clone().requires_grad_(True)
        want = _kd(want_s, t, y, temperature, alpha)
        want.backward()
        got_s, got_t = s.clone().requires_grad_(True), t.clone().requires_grad_(True)
        got = learner.call("distillation_loss", got_s, got_t, y, temperature, alpha)
        expect(isinstance(got, torch.Tensor), f"distillation_loss should return a tensor, got {type(got).__name__}")
        expect(got.dim() == 0, f"distillation_loss should return a 0-d tensor, got shape {tuple(got.shape)}")
        expect(got.requires_grad, "distillation_loss's result has no gradient: keep the student's logits in the graph")
        got.backward()
        err = abs(float(got) - float(want)) / max(abs(float(want)), 1e-12)
        grad_err = float((got_s.grad - want_s.grad).abs().max() / want_s.grad.abs().max().clamp_min(1e-12))
        worst = max(worst, err, grad_err)
        if err > KD_TOL:
            problems.append(f"T={temperature:g}, alpha={alpha:g}: loss {float(got):.6f}, expected {float(want):.6f}")
        elif grad_err > KD_TOL:
            problems.append(f"T={temperature:g}, alpha={alpha:g}: the gradient on the student's logits is off by "
                            f"{grad_err:.2e} (relative)")
        if got_t.grad is not None and float(got_t.grad.abs().max()) > 0:
            problems.append(f"T={temperature:g}, alpha={alpha:g}: a gradient flows into the teacher's logits "
                            f"(detach them)")
    logits = torch.randn(8, 10, generator=gen) * 4
    for temperature in (1.0, 5.0):
        got = as_tensor(learner.call("soft_targets", logits.clone(), temperature), "soft_targets' result",
                        shape=logits.shape)
        want = torch.softmax(logits / temperature, -1)
        if not torch.allclose(got, want, rtol=1e-5, atol=1e-7):
            problems.append(f"soft_targets at T={temperature:g} differ from softmax(logits / T)")
    grade.record(len(problems), details={"worst_relative_error": worst, "problems": problems[:5]},
                 message=(f"loss and gradient within {worst:.1e} of the grader's at {len(cases)} (T, alpha) "
                          f"pairs; soft targets right" if not problems else
                          f"{len(problems)} problem(s): " + "; ".join(problems[:3])))



#: The labelled budget: this many training images of each class, drawn at random by the grader.
PER_CLASS = 5
#: The student may have at most this fraction of the teacher's parameters.
MAX_PARAM_FRACTION = 0.1
#: The student trained alone must reach this top-1 (%) on the test split: a baseline below it is not the same
#: recipe (the reference's alone students: 88.9-96.4 % over 21 subsets).
MIN_BASELINE_TOP1 = 80.0


def _labelled(x: torch.Tensor, y: torch.Tensor, per_class: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The grader's own draw: ``per_class`` random images of every class."""
    gen = torch.Generator().manual_seed(seed)
    idx = torch.cat([members[torch.randperm(len(members), generator=gen)[:per_class]]
                     for members in ((y == c).nonzero().squeeze(1) for c in torch.unique(y).tolist())])
    return x[idx].clone(), y[idx].clone()


def _scores(learner, model, x: torch.Tensor, y: torch.Tensor, what: str) -> tuple[float, float]:
    """(test cross-entropy in nats, float64; top-1 in %) of a trained student, the grader's count."""
    expect(isinstance(model, torch.nn.Module), f"train_student should return the student, got {type(model).__name__}")
    model.eval()
    with torch.inference_mode():
        logits = as_tensor(learner.call_obj(model, x.clone(), what=what), f"{what}'s output", shape=(len(y), 10))
    logits = logits.double()
    return float(F.cross_entropy(logits, y)), 100.0 * float((logits.argmax(1) == y).double().mean())


@criterion("p2.compression.distill_gain")
def test_distill_gain(grade, learner):
    d = digits()
    train_x, train_y = d["train_x"], d["train_y"]
    seed = random.SystemRandom().randrange(2**16)
    x, y = _labelled(train_x, train_y, PER_CLASS, seed)
    teacher = copy.deepcopy(d["model"]).eval()
    before = state_snapshot(teacher)
    config = learner.attr("DistillConfig")()
    config = dataclasses.replace(config, train=dataclasses.replace(config.train, seed=seed))
    students = [learner.call("make_student", seed=seed) for _ in range(2)]
    teacher_params, student_params = params_of(teacher), params_of(students[0])
    expect(student_params <= MAX_PARAM_FRACTION * teacher_params,
           f"make_student builds {student_params:,} parameters, more than {MAX_PARAM_FRACTION:g} of the teacher's "
           f"{teacher_params:,}")
    with threads(1):    # as fine-tuning (workloads.learner_fine_tuned): steady beside a busy neighbour
        alone = learner.call("train_student", students[0], x.clone(), y.clone(), None, config)
        taught = learner.call("train_student", students[1], x.clone(), y.clone(), teacher, config)
    expect(unchanged(teacher, before), "train_student changed the teacher's weights or BatchNorm statistics: keep it "
                                       "in eval mode and run it under torch.inference_mode()")
    (nll_a, top_a), (nll_t, top_t) = (_scores(learner, alone, d["test_x"], d["test_y"], "the student trained alone"),
                                      _scores(learner, taught, d["test_x"], d["test_y"], "the distilled student"))
    details = {"seed": seed, "alone_cross_entropy": nll_a, "distilled_cross_entropy": nll_t,
               "alone_top1_pct": top_a, "distilled_top1_pct": top_t, "top1_gain_pt": top_t - top_a,
               "student_params": student_params, "teacher_params": teacher_params,
               "temperature": config.temperature, "alpha": config.alpha, "epochs": config.train.epochs}
    expect(top_a >= MIN_BASELINE_TOP1,
           f"the student trained alone (train_student with teacher=None) reaches only {top_a:.1f} % top-1: the "
           f"baseline must be the same recipe without the teacher, not a weaker one")
    cut = 100.0 * (1.0 - nll_t / nll_a)
    grade.record(cut, details=details,
                 message=f"{PER_CLASS} labelled images per class (seed {seed}), student {student_params:,} parameters "
                         f"(1/{teacher_params / student_params:.0f} of the teacher): test cross-entropy alone "
                         f"{nll_a:.3f}, distilled {nll_t:.3f} ({cut:.0f} % lower); top-1 {top_a:.2f} % -> "
                         f"{top_t:.2f} % ({top_t - top_a:+.2f} pt, reported)")
