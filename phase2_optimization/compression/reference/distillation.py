# REFERENCE SOLUTION: excluded from the learner release (make release).
"""Task 2.15: knowledge distillation: a large teacher's softened outputs teach a small student more than the
hard labels alone (Hinton, Vinyals, Dean, 2015).

Guide: COMPRESSION_GUIDE.md#task-215-knowledge-distillation
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..training import make_optimizer, shifted_views, thread_budget, view_batches
from ..types import DistillConfig

__all__ = ["soft_targets", "distillation_loss", "train_student"]


# ---------------------------------------------------------------------------------------------------
# ## Task 2.15: knowledge distillation
# ---------------------------------------------------------------------------------------------------
def soft_targets(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """The teacher's softened distribution: ``softmax(logits / T)`` over the last axis.

    Args:
        logits: float [B, classes].
        temperature: T > 0; higher T flattens the distribution and shows which wrong classes the teacher
            finds plausible (the "dark knowledge").

    Returns:
        float [B, classes], rows summing to 1.

    Raises:
        ValueError: ``temperature`` not > 0.

    Guide: COMPRESSION_GUIDE.md#task-215-knowledge-distillation
    """
    # BEGIN SOLUTION
    # Step 1: check T > 0; softmax of logits / T along dim -1.
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    return torch.softmax(logits / temperature, dim=-1)
    # END SOLUTION
    """ # BEGIN PROMPT
    # Step 1: check T > 0; softmax of logits / T along dim -1.
    raise NotImplementedError("Task 2.15: see COMPRESSION_GUIDE.md#task-215-knowledge-distillation")
    """  # END PROMPT


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
                      temperature: float = 8.0, alpha: float = 0.7) -> torch.Tensor:
    """Hinton's distillation loss, a scalar to minimise.

    ``alpha * T**2 * KL(p_teacher || p_student) + (1 - alpha) * CE(student_logits, labels)`` where
    ``p = softmax(logits / T)``, the KL divergence is summed over classes and averaged over the batch
    (``F.kl_div(log p_student, log p_teacher, reduction="batchmean", log_target=True)``), and the
    cross-entropy is the ordinary one at T = 1. The T**2 keeps the soft term's gradients the same size
    whatever T is.

    Args:
        student_logits: float [B, classes], with gradients.
        teacher_logits: float [B, classes]; no gradient flows into the teacher (detach it).
        labels: int64 [B].
        temperature: T > 0.
        alpha: 0..1, the soft term's weight.

    Returns:
        A 0-d float tensor.

    Raises:
        ValueError: ``temperature`` not > 0, or ``alpha`` outside [0, 1].

    Tolerance the grader applies (p2.compression.kd_loss): value within 1e-5 (relative) of its own, and the
    gradient with respect to the student's logits within 1e-5, at several T and alpha; none into the teacher.

    Guide: COMPRESSION_GUIDE.md#task-215-knowledge-distillation
    """
    # BEGIN SOLUTION
    # Step 1: validate T and alpha.
    if not temperature > 0 or not 0.0 <= alpha <= 1.0:
        raise ValueError(f"need temperature > 0 and 0 <= alpha <= 1, got {temperature} and {alpha}")
    # Step 2: the soft term: KL between the log-softmaxes at T (teacher detached), times T**2.
    soft = F.kl_div(F.log_softmax(student_logits / temperature, dim=-1),
                    F.log_softmax(teacher_logits.detach() / temperature, dim=-1),
                    reduction="batchmean", log_target=True) * temperature ** 2
    # Step 3: the hard term: cross-entropy with the labels; mix them with alpha.
    hard = F.cross_entropy(student_logits, labels)
    return alpha * soft + (1.0 - alpha) * hard
    # END SOLUTION
    """ # BEGIN PROMPT
    # Step 1: validate T and alpha.
    # Step 2: the soft term: KL between the log-softmaxes at T (teacher detached), times T**2.
    # Step 3: the hard term: cross-entropy with the labels; mix them with alpha.
    raise NotImplementedError("Task 2.15: see COMPRESSION_GUIDE.md#task-215-knowledge-distillation")
    """  # END PROMPT


def train_student(student: nn.Module, x: torch.Tensor, y: torch.Tensor, teacher: nn.Module | None = None,
                  config: DistillConfig | None = None) -> nn.Module:
    """Train ``student`` in place, with a teacher (distillation) or without one (the baseline); return it in
    eval mode.

    Args:
        student: the small model, freshly initialised by the caller.
        x, y: training images float32 [N, C, H, W] and labels int64 [N].
        teacher: the large trained model, kept in eval mode and never updated; None trains on the labels
            alone (plain cross-entropy), with everything else identical.
        config: temperature, alpha and the training settings (``config.train``).

    Returns:
        ``student`` itself, in eval mode.

    The images are seen through their ``shifted_views`` (every shift of up to ``config.train.max_shift``
    pixels); each batch of ``view_batches`` picks its images and, per image, one view. The teacher is frozen,
    so its logits for every view are computed once, before training, under ``torch.inference_mode()``
    ([V, N, classes]; 25 views of 50 images: one pass of 1,250 images instead of 240 batches). The shared
    helpers (``make_optimizer``, ``thread_budget``) and ``torch.manual_seed(config.train.seed)`` first, so the
    runs with and without a teacher see the same images, order and shifts.

    Tolerance the grader applies (p2.compression.distill_gain): with ``DistillConfig(train=...(seed=s))`` on
    5 labelled images per class, the distilled student's cross-entropy on the test split at least 15 % below
    the same student's trained alone (25 % for full marks); the top-1 gain is reported.

    Guide: COMPRESSION_GUIDE.md#task-215-knowledge-distillation
    """
    # BEGIN SOLUTION
    # Step 1: the config (default DistillConfig()), the seed, a generator, the optimizer; the shifted views.
    config = config or DistillConfig()
    tc = config.train
    torch.manual_seed(tc.seed)
    gen = torch.Generator().manual_seed(tc.seed)
    opt, sched = make_optimizer(student, tc, len(y))
    views = shifted_views(x, tc.max_shift)
    # Step 2: with a teacher, its logits for every view, once: teacher.eval(), inference_mode, [V, N, classes].
    teacher_logits = None
    if teacher is not None:
        teacher.eval()
        with torch.inference_mode():
            teacher_logits = torch.stack([teacher(v) for v in views])
    # Step 3: per batch of view_batches: the student's logits on views[v, idx]; distillation_loss against
    # teacher_logits[v, idx], or cross_entropy without a teacher; zero_grad, backward, step, scheduler step.
    with thread_budget(tc.threads):
        student.train()
        for _ in range(tc.epochs):
            for idx, v in view_batches(len(y), len(views), tc, gen):
                logits = student(views[v, idx])
                if teacher_logits is None:
                    loss = F.cross_entropy(logits, y[idx])
                else:
                    loss = distillation_loss(logits, teacher_logits[v, idx], y[idx], config.temperature, config.alpha)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
    # Step 4: eval() and return the student.
    return student.eval()
    # END SOLUTION
    """ # BEGIN PROMPT
    # Step 1: the config (default DistillConfig()), the seed, a generator, the optimizer; the shifted views.
    # Step 2: with a teacher, its logits for every view, once: teacher.eval(), inference_mode, [V, N, classes].
    # Step 3: per batch of view_batches: the student's logits on views[v, idx]; distillation_loss against
    # teacher_logits[v, idx], or cross_entropy without a teacher; zero_grad, backward, step, scheduler step.
    # Step 4: eval() and return the student.
    raise NotImplementedError("Task 2.15: see COMPRESSION_GUIDE.md#task-215-knowledge-distillation")
    """  # END PROMPT
