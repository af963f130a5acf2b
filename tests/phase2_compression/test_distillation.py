"""Task 2.15: Hinton's loss, soft targets, and a training loop that runs the same with and without a teacher."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from .impl import c

pytestmark = pytest.mark.phase2_task15


def test_soft_targets_flatten_with_temperature():
    logits = torch.tensor([[4.0, 1.0, 0.0]])
    sharp, soft = c.soft_targets(logits, 1.0), c.soft_targets(logits, 8.0)
    torch.testing.assert_close(sharp, torch.softmax(logits, -1))
    assert soft.sum().item() == pytest.approx(1.0) and soft.max() < sharp.max()
    with pytest.raises(ValueError):
        c.soft_targets(logits, 0.0)


def test_loss_is_zero_soft_term_when_student_equals_teacher():
    t = torch.randn(5, 10)
    y = torch.randint(0, 10, (5,))
    assert c.distillation_loss(t.clone(), t, y, 4.0, 1.0).item() == pytest.approx(0.0, abs=1e-6)
    torch.testing.assert_close(c.distillation_loss(t.clone(), t, y, 4.0, 0.0), F.cross_entropy(t, y))


def test_soft_term_is_scaled_by_t_squared_and_sends_no_gradient_to_the_teacher():
    torch.manual_seed(0)
    s, t, y = torch.randn(8, 10, requires_grad=True), torch.randn(8, 10, requires_grad=True), torch.randint(0, 10, (8,))
    loss = c.distillation_loss(s, t, y, 3.0, 1.0)
    kl = F.kl_div(F.log_softmax(s / 3, -1), F.softmax(t / 3, -1), reduction="batchmean")
    assert loss.item() == pytest.approx(9.0 * kl.item(), rel=1e-5)
    loss.backward()
    assert s.grad is not None and (t.grad is None or not t.grad.any())


@pytest.mark.parametrize("temperature, alpha", [(0.0, 0.5), (2.0, 1.5)])
def test_bad_settings_are_refused(temperature, alpha):
    with pytest.raises(ValueError):
        c.distillation_loss(torch.randn(2, 3), torch.randn(2, 3), torch.tensor([0, 1]), temperature, alpha)


def test_train_student_uses_the_teacher_and_leaves_it_alone():
    torch.manual_seed(0)
    x, y = torch.randn(48, 3, 16, 16), torch.randint(0, 10, (48,))
    teacher = c.make_student(8, pool=1, seed=5).eval()
    before = [p.detach().clone() for p in teacher.parameters()]
    config = c.DistillConfig(temperature=2.0, alpha=0.9, train=c.FineTuneConfig(epochs=2, batch_size=16, lr=1e-2))
    alone = c.train_student(c.make_student(4, pool=1, seed=1), x, y, None, config)
    taught = c.train_student(c.make_student(4, pool=1, seed=1), x, y, teacher, config)
    assert not alone.training and not taught.training
    assert all(torch.equal(a, b) for a, b in zip(before, teacher.parameters()))
    flat = [torch.cat([p.detach().flatten() for p in m.parameters()]) for m in (alone, taught)]
    assert not torch.equal(*flat)     # the teacher changed what was learned
    again = c.train_student(c.make_student(4, pool=1, seed=1), x, y, None, config)
    assert torch.equal(flat[0], torch.cat([p.detach().flatten() for p in again.parameters()]))


def test_labelled_subset_takes_the_same_number_of_each_class():
    x, y = torch.arange(60.0).reshape(60, 1), torch.arange(60) % 3
    sx, sy = c.labelled_subset(x, y, per_class=4, seed=1)
    assert sy.tolist() == [0] * 4 + [1] * 4 + [2] * 4 and (sx.squeeze(1).long() % 3 == sy).all()
    assert torch.equal(c.labelled_subset(x, y, 4, seed=1)[0], sx)
    with pytest.raises(ValueError):
        c.labelled_subset(x, y, per_class=30)


def test_shifted_views_hold_every_shift_once_the_middle_one_unshifted():
    x = torch.arange(2 * 1 * 5 * 5, dtype=torch.float32).reshape(2, 1, 5, 5)
    views = c.shifted_views(x, 1)
    assert views.shape == (9, 2, 1, 5, 5)
    assert torch.equal(views[4], x)                                    # (0, 0) in the middle
    assert torch.equal(views[0], torch.roll(x, (-1, -1), dims=(2, 3)))  # (dy, dx) = (-1, -1) first
    assert torch.equal(views[5], torch.roll(x, (0, 1), dims=(2, 3)))
    assert torch.equal(c.shifted_views(x, 0)[0], x)
    with pytest.raises(ValueError):
        c.shifted_views(x, -1)


def test_view_batches_cover_every_image_once_per_epoch_with_a_view_each():
    config = c.FineTuneConfig(batch_size=4)
    batches = list(c.view_batches(10, 9, config, torch.Generator().manual_seed(3)))
    assert [len(i) for i, _ in batches] == [4, 4, 2]
    assert sorted(torch.cat([i for i, _ in batches]).tolist()) == list(range(10))
    views = torch.cat([v for _, v in batches])
    assert int(views.min()) >= 0 and int(views.max()) < 9 and len(set(views.tolist())) > 1   # per image, not per batch
    again = list(c.view_batches(10, 9, config, torch.Generator().manual_seed(3)))
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(batches, again))
