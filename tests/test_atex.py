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


def _student(teacher):
    student = copy.deepcopy(teacher)
    for p in student.parameters():
        p.requires_grad_(True)
    return student


def test_atex_authors_batch_equals_the_authors_procedure(digits, digits_model):
    """defense=atex_authors: one batch (the student's SmoothGrad, the code's positions and
    perpendicular samples, KL to the teacher at T = 4, four Adam steps on the same samples) leaves
    the student with the weights of robex/bench/authors_atex.py's re-implementation of the authors'
    step, given the same random draws; the paper-as-written ATEX step ends elsewhere."""
    from robex.bench.authors_atex import authors_atex_batch
    from robex.defenses.atex import ATEXAuthors, ATEXAuthorsLoss

    x, y = digits.train_x[:20], digits.train_y[:20]
    ours, theirs = _student(digits_model), _student(digits_model)
    defense = ATEXAuthors(delta=0.1, micro_batch=64, show_progress=False)  # micro-batches: the sum is the same
    step = ATEXAuthorsLoss(defense, digits_model).prepare(ours, x, y, None, torch.Generator().manual_seed(5))
    opt = torch.optim.Adam(ours.parameters(), lr=1e-3)
    for _ in range(4):
        opt.zero_grad()
        step(ours)
        opt.step()
    authors_atex_batch(digits_model, theirs, torch.optim.Adam(theirs.parameters(), lr=1e-3), x, y, eps=0.1,
                       generator=torch.Generator().manual_seed(5))
    moved = max((a - b).abs().max().item() for a, b in zip(ours.parameters(), digits_model.parameters()))
    diff = max((a - b).abs().max().item() for a, b in zip(ours.parameters(), theirs.parameters()))
    assert moved > 1e-3 and diff < 1e-5 * max(1.0, moved / 1e-2), (moved, diff)
    # the same batch with a single step (robex's paper-as-written count) ends elsewhere
    once = _student(digits_model)
    step1 = ATEXAuthorsLoss(defense, digits_model).prepare(once, x, y, None, torch.Generator().manual_seed(5))
    opt1 = torch.optim.Adam(once.parameters(), lr=1e-3)
    opt1.zero_grad()
    step1(once)
    opt1.step()
    assert max((a - b).abs().max().item() for a, b in zip(once.parameters(), theirs.parameters())) > 10 * diff + 1e-6


def test_fit_takes_inner_steps_on_one_draw_of_samples_and_refuses_a_loss_without_prepare(digits, digits_model):
    from robex.errors import RobexError
    from robex.trainers.fit import fit
    from robex.trainers.optim import optimiser_spec

    calls = {"prepare": 0, "step": 0}

    class Counting:
        def prepare(self, model, x, y, idx, generator):
            calls["prepare"] += 1

            def step(m):
                calls["step"] += 1
                loss = m(x).logsumexp(1).mean()
                loss.backward()
                return loss.item()
            return step

    student = _student(digits_model)
    fit(student, Counting(), digits.train_x[:30], digits.train_y[:30], epochs=1, batch_size=10,
        optimiser=optimiser_spec({"name": "adam", "lr": 1e-3}), generator=torch.Generator().manual_seed(0),
        inner_steps=3, show_progress=False)
    assert calls == {"prepare": 3, "step": 9}
    with pytest.raises(RobexError, match="inner_steps=3 needs a loss"):
        fit(student, lambda *a: 0.0, digits.train_x[:30], digits.train_y[:30], epochs=1, batch_size=10,
            optimiser=optimiser_spec({"name": "adam", "lr": 1e-3}), generator=torch.Generator().manual_seed(0),
            inner_steps=3, show_progress=False)


def test_atex_cnn_pools_before_softplus_and_computes_the_authors_function():
    """atex_cnn stores Conv -> MaxPool -> softplus (a quarter of the activation's elements): the
    authors' order (softplus before the pool) with the same weights gives the same logits and input
    gradients, also where softplus saturates to 0 in whole windows, and the parameter names agree,
    so weights saved in either order load in the other."""
    from torch import nn

    from robex.models.atex_cnn import atex_cnn

    torch.manual_seed(0)
    model = atex_cnn(image_size=12, channels=6, hidden=16)
    assert [type(m).__name__ for m in model][:3] == ["Conv2d", "MaxPool2d", "BetaSoftplus"]
    layers = list(copy.deepcopy(model))
    for i in (1, 4):
        layers[i], layers[i + 1] = layers[i + 1], layers[i]
    authors = nn.Sequential(*layers)
    assert [type(m).__name__ for m in authors][:3] == ["Conv2d", "BetaSoftplus", "MaxPool2d"]
    assert list(authors.state_dict()) == list(model.state_dict())
    with torch.no_grad():
        model[0].bias[:2] -= 4.0
        authors[0].bias[:2] -= 4.0  # saturated channels: softplus exactly 0 over whole windows
    x = torch.rand(5, 1, 12, 12, requires_grad=True)
    y = torch.randint(0, 10, (5,))
    out_r, out_a = model(x), authors(x)
    torch.testing.assert_close(out_r, out_a, rtol=1e-6, atol=1e-7)
    (g_r,) = torch.autograd.grad(out_r.gather(1, y.view(-1, 1)).sum(), x)
    (g_a,) = torch.autograd.grad(out_a.gather(1, y.view(-1, 1)).sum(), x)
    torch.testing.assert_close(g_r, g_a, rtol=1e-5, atol=1e-7)
