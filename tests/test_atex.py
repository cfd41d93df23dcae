import copy

import pytest
import torch

from robex.defenses.atex import ATEX, perpendicular, unit_direction
from robex.pipeline import freeze


def test_perpendicular_samples_are_orthogonal_to_the_explanation():
    torch.manual_seed(0)
    atex = ATEX(delta=0.08, n_along=3, n_perp=5, show_progress=False)
    x = torch.rand(4, 1, 8, 8)
    phi = torch.randn(4, 1, 8, 8)
    d = unit_direction(phi, "linf")
    x_i, x_p = atex.samples(x, d)
    assert x_i.shape == (4, 3, 1, 8, 8) and x_p.shape == (4, 3, 5, 1, 8, 8)
    step_perp = (x_p - x_i[:, :, None]).flatten(3)
    dots = (step_perp * phi.flatten(1)[:, None, None]).sum(-1)
    norms = step_perp.norm(dim=-1) * phi.flatten(1).norm(dim=1)[:, None, None]
    assert (dots.abs() <= 1e-5 * norms + 1e-9).all()
    # along-samples move along phi, within Delta1 (L_inf units)
    step_along = (x_i - x[:, None]).flatten(2)
    cos = torch.nn.functional.cosine_similarity(step_along, phi.flatten(1)[:, None].expand_as(step_along), dim=-1)
    assert ((cos.abs() - 1).abs() < 1e-5).all()
    assert step_along.abs().amax() <= 0.08 + 1e-7
    assert step_perp.abs().amax() <= 0.08 + 1e-7


def test_perpendicular_removes_the_component():
    u, phi = torch.randn(10, 3, 4, 4), torch.randn(1, 3, 4, 4)
    p = perpendicular(u, phi)
    assert (p * phi).sum((1, 2, 3)).abs().max() < 1e-5


def test_one_atex_iteration_fine_tunes_and_keeps_accuracy(digits, digits_model):
    from robex.models.training import accuracy

    teacher = digits_model
    student = copy.deepcopy(teacher)
    for p in student.parameters():
        p.requires_grad_(True)
    atex = ATEX(delta=0.05, n_along=2, n_perp=2, sg_samples=3, batch_size=64, show_progress=False)
    info = atex.apply_stage(1, teacher, student, digits)
    freeze(student)
    assert torch.isfinite(torch.tensor(info["loss"]))
    # the stage lowers Eq. 4's objective J, written here from the paper, on a fixed fresh draw
    x = digits.train_x[:64]
    d = atex.teacher_directions(teacher, digits.train_x, digits.train_y)[:64]
    gen = torch.Generator().manual_seed(123)
    x_i, x_p = atex.samples(x, d, gen)

    def J(g):
        def kl(p_logits, q_logits):
            p = torch.softmax(p_logits / atex.temperature, 1)
            return (p * (p.log() - torch.log_softmax(q_logits, 1))).sum(1)

        with torch.no_grad():
            first = kl(teacher(x), g(x))
            fi = teacher(x_i.flatten(0, 1)).repeat_interleave(atex.n_perp, 0)
            second = kl(fi, g(x_p.flatten(0, 2))).view(len(x), -1).sum(1)
        return (first + atex.alpha * second).mean().item()

    assert J(student) < 0.9 * J(teacher)
    assert accuracy(student, digits.test_x, digits.test_y) > accuracy(teacher, digits.test_x, digits.test_y) - 0.05
    # the teacher's directions are computed once and reused by later iterations
    d1 = atex.teacher_directions(teacher, digits.train_x, digits.train_y)
    assert atex.teacher_directions(teacher, digits.train_x, digits.train_y) is d1
