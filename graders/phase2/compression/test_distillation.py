"""Task 2.15: knowledge distillation: Hinton's loss exactly (value, gradient, no gradient into the teacher).

The gain of a distilled student over one trained alone is shown by the notebook, not graded yet: it varied from
0.3 to 5.0 points between random 50-image subsets (phase2_optimization/CALIBRATION.md)."""
from __future__ import annotations

import random

import torch
import torch.nn.functional as F

from ...checks import as_tensor, expect
from ...plugin import criterion

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

