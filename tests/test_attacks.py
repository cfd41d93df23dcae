import pytest
import torch

from robex.attacks.manipulation import ExplanationManipulation, RandomNoise
from robex.attacks.optimisers import AdamStep, NormalisedStep, SignStep
from robex.attacks.objectives import RegionAttention, TopKSuppression, random_regions, region_masks, topk_masks
from robex.errors import RobexError
from robex.explainers.gradient import Gradient
from robex.threats import Threat


@pytest.fixture(scope="module")
def batch(digits, digits_model):
    x, y = digits.test_x[:48], digits.test_y[:48]
    return x, y


def _objective(kind):
    return TopKSuppression(k=6) if kind == "untargeted" else RegionAttention(size=3, seed=0)


def _objective_gain(attack, model, x, y, x_adv):
    ex = Gradient()
    attack._prepare(model, ex, x, y)
    h0, h1 = ex(model, x, y), ex(model, x_adv, y)
    mask = attack.objective.state(h0, slice(0, len(x)))
    return attack.objective.value(h1, mask) - attack.objective.value(h0, mask)


@pytest.mark.parametrize("objective", ["untargeted", "targeted"])
def test_manipulation_respects_budget_keeps_labels_and_beats_random(objective, digits_model, batch):
    x, y = batch
    eps = 0.1
    attack = ExplanationManipulation(objective=_objective(objective), threat=Threat(budget=eps), steps=30, optimiser=NormalisedStep(0.02),
                                     batch_size=16, show_progress=False)
    res = attack(digits_model, Gradient(), x, y)
    d = (res.x_adv - x).abs().flatten(1).amax(1)
    assert res.x_adv.min() >= 0 and res.x_adv.max() <= 1
    assert (d <= eps + 1e-6).all()
    pred0, pred1 = digits_model(x).argmax(1), digits_model(res.x_adv).argmax(1)
    assert torch.equal(pred0, pred1) and res.facts["label_kept"].all()
    gain = _objective_gain(attack, digits_model, x, y, res.x_adv)
    assert (gain >= -1e-7).all()  # best iterate: never worse than the start
    torch.testing.assert_close(res.facts["objective_after"] - res.facts["objective_before"], gain,
                               rtol=1e-4, atol=1e-6)
    noise = RandomNoise(threat=Threat(budget=eps), steps=30, optimiser=NormalisedStep(0.02, "reject"), batch_size=16, show_progress=False)
    rnd = noise(digits_model, Gradient(), x, y)
    gain_rnd = _objective_gain(attack, digits_model, x, y, rnd.x_adv)
    assert gain.mean() > 2 * gain_rnd.mean().clamp_min(0) + 1e-3


def test_sign_step_top_k_attack_keeps_budget_and_labels_and_lowers_the_top_k_mass(digits_model, batch):
    """Ghorbani's top-k attack (attack=manip_topk_sign): sign steps may walk through label changes,
    but the returned iterate keeps the label, stays in the ball and never scores worse than x."""
    x, y = batch
    attack = ExplanationManipulation(objective=TopKSuppression(k=6), threat=Threat(budget=4 / 255), steps=20,
                                     optimiser=SignStep(1 / 255), batch_size=16, show_progress=False)
    res = attack(digits_model, Gradient(), x, y)
    assert ((res.x_adv - x).abs().flatten(1).amax(1) <= 4 / 255 + 1e-6).all()
    assert torch.equal(digits_model(x).argmax(1), digits_model(res.x_adv).argmax(1))
    gain = _objective_gain(attack, digits_model, x, y, res.x_adv)
    assert (gain >= -1e-7).all() and gain.mean() > 0
    with pytest.raises(RobexError, match="optimiser must be one of"):
        RandomNoise(threat=Threat(budget=0.05), steps=2, optimiser=SignStep(0.01), show_progress=False)


def test_random_control_respects_budget_and_labels(digits_model, batch):
    x, y = batch
    res = RandomNoise(threat=Threat(budget=0.05), steps=20, optimiser=NormalisedStep(0.02, "reject"), show_progress=False)(digits_model, Gradient(), x, y)
    assert ((res.x_adv - x).abs().flatten(1).amax(1) <= 0.05 + 1e-6).all()
    assert res.x_adv.min() >= 0 and res.x_adv.max() <= 1
    assert torch.equal(digits_model(x).argmax(1), digits_model(res.x_adv).argmax(1))
    assert res.facts["linf"].mean() > 0.04  # it does move to the budget


def test_attack_is_independent_of_chunking(digits_model, batch):
    x, y = batch
    kw = dict(objective=RegionAttention(size=3, seed=0), threat=Threat(budget=0.05), steps=5, show_progress=False)
    a = ExplanationManipulation(batch_size=48, **kw)(digits_model, Gradient(), x, y).x_adv
    b = ExplanationManipulation(batch_size=7, **kw)(digits_model, Gradient(), x, y).x_adv
    torch.testing.assert_close(a, b)


def test_regions_are_seeded_and_inside_the_image():
    c1, c2 = random_regions(100, 28, 5, seed=3), random_regions(100, 28, 5, seed=3)
    assert torch.equal(c1, c2) and not torch.equal(c1, random_regions(100, 28, 5, seed=4))
    m = region_masks(c1, 28, 28, 5)
    assert (m.sum(1) == 25).all()


@pytest.mark.parametrize("budget", [-0.01, 1.5, float("nan"), "abc"])
def test_budget_out_of_range_is_a_clear_error(budget):
    with pytest.raises(RobexError, match="threat.budget"):
        ExplanationManipulation(threat={"budget": budget}, objective=TopKSuppression())
    with pytest.raises(RobexError, match="threat.budget"):
        RandomNoise(threat={"budget": budget})


def test_an_l2_threat_in_normalised_units_may_exceed_one_and_is_respected(digits, digits_model, batch):
    """RelEx-style budgets (2-8 in normalised units) are valid for L2; the attack stays inside the
    L2 ball measured in the model's normalised units and keeps labels."""
    from torch import nn

    from robex.models.normalize import Normalize

    x, y = batch
    std = (0.5,)
    model = nn.Sequential(Normalize(mean=(0.5,), std=std), digits_model).eval()
    threat = Threat(norm="l2", budget=2.0, units="normalised")
    res = ExplanationManipulation(threat=threat, objective=TopKSuppression(k=6), steps=10, optimiser=NormalisedStep(0.5),
                                  batch_size=16, show_progress=False)(model, Gradient(), x, y)
    size = ((res.x_adv - x) / std[0]).flatten(1).norm(dim=1)
    assert (size <= 2.0 + 1e-4).all() and size.max() > 0.5  # inside the ball, and it moved
    assert res.x_adv.min() >= 0 and res.x_adv.max() <= 1 and res.facts["label_kept"].all()
    with pytest.raises(RobexError, match="normalisation layer"):  # no layer to define the units
        ExplanationManipulation(threat=threat, objective=TopKSuppression(k=6), steps=1,
                                show_progress=False)(digits_model, Gradient(), x, y)


def test_threat_rows_say_what_the_attack_could_do():
    assert Threat(budget=0.1).columns() == {"threat": "linf", "budget": 0.1, "units": "pixel"}
    from robex.attacks.targeted_map import TargetedMapAttack

    cols = TargetedMapAttack().threat.columns()
    assert cols["threat"] == "unconstrained" and cols["budget"] != cols["budget"]  # NaN: no ball
    with pytest.raises(RobexError, match="threat.kind"):
        Threat(kind="flow")


def test_manipulation_of_a_relu_net_moves_through_the_surrogate_and_refuses_without_it(digits, batch):
    """A ReLU net's gradient map has zero input-derivative: with surrogate_beta the attack still
    lowers the top-k mass (on the real model's map, labels kept on the real model); without it the
    attack stops with a clear error instead of reporting a perfectly robust explanation."""
    from robex.models.vgg import vgg_small

    x, y = batch
    x, y = x[:16], y[:16]
    torch.manual_seed(0)
    model = vgg_small(image_size=8, widths=(8, 8), hidden=32).eval()
    kw = dict(objective=TopKSuppression(k=6), threat=Threat(budget=0.1), steps=20, optimiser=NormalisedStep(0.02), batch_size=16,
              show_progress=False)
    res = ExplanationManipulation(surrogate_beta=10.0, **kw)(model, Gradient(), x, y)
    ex = Gradient()
    h0, h1 = ex(model, x, y), ex(model, res.x_adv, y)
    mask = topk_masks(h0, 6)
    assert res.facts["label_kept"].all()
    assert torch.equal(model(x).argmax(1), model(res.x_adv).argmax(1))
    assert res.facts["linf"].max() > 0
    assert ((h1.flatten(1) * mask).sum(1) < (h0.flatten(1) * mask).sum(1)).float().mean() > 0.5
    assert not any(type(m).__name__ == "BetaSoftplus" for m in model.modules())  # model untouched
    with pytest.raises(RobexError, match="surrogate_beta"):
        ExplanationManipulation(surrogate_beta=None, **kw)(model, Gradient(), x, y)


def test_normalised_step_halves_a_rejected_step_and_retries_its_direction():
    threat = Threat(budget=1.0)
    opt = NormalisedStep(0.5, "halve")
    x0 = torch.zeros(2, 1, 1, 2)
    opt.start(x0, threat)
    g = torch.tensor([[[[2.0, -1.0]]], [[[0.0, 4.0]]]])
    x1 = opt.step(x0, g, torch.tensor([True, True]))
    torch.testing.assert_close(x1, torch.tensor([[[[0.5, -0.25]]], [[[0.0, 0.5]]]]))  # 0.5 g / max|g|
    # sample 0 lost its label at x1: it retries from x0 along its old direction with half the step;
    # sample 1 kept it and steps on from x1 along the new gradient
    x2 = opt.step(x1, -g, torch.tensor([False, True]))
    torch.testing.assert_close(x2, torch.tensor([[[[0.25, -0.125]]], [[[0.0, 0.0]]]]))
    torch.testing.assert_close(opt.last_accepted(x2, torch.tensor([False, True])),
                               torch.tensor([[[[0.0, 0.0]]], [[[0.0, 0.0]]]]))


def test_reject_takes_a_new_direction_from_the_last_accepted_point_with_the_same_step():
    opt = NormalisedStep(0.5, "reject")
    x0 = torch.zeros(1, 1, 1, 2)
    opt.start(x0, Threat(budget=1.0))
    x1 = opt.step(x0, torch.tensor([[[[1.0, 0.0]]]]), torch.tensor([True]))
    x2 = opt.step(x1, torch.tensor([[[[0.0, 1.0]]]]), torch.tensor([False]))
    torch.testing.assert_close(x2, torch.tensor([[[[0.0, 0.5]]]]))


def test_sign_and_adam_steps_ascend_the_objective():
    x = torch.zeros(1, 3)
    g = torch.tensor([[3.0, -0.1, 0.0]])
    torch.testing.assert_close(SignStep(0.01).step(x, g), torch.tensor([[0.01, -0.01, 0.0]]))
    opt = AdamStep(lr=0.1)
    opt.start([x, x], lrs=[None, 0.5])
    # Adam's first step moves every element with a non-zero gradient by lr in the gradient's sign;
    # each parameter tensor with its own learning rate (the parts of a composite perturbation)
    a, b = opt.step([x, x], [g, g])
    torch.testing.assert_close(a, torch.tensor([[0.1, -0.1, 0.0]]), atol=1e-6, rtol=0)
    torch.testing.assert_close(b, torch.tensor([[0.5, -0.5, 0.0]]), atol=1e-6, rtol=0)
    with pytest.raises(RobexError, match="on_label_change"):
        NormalisedStep(0.1, "retry")


def test_a_seeded_smoothgrad_is_attacked_through_fresh_draws_of_the_chosen_count(digits_model, batch, monkeypatch):
    """noise_samples k: every step differentiates SmoothGrad with k draws that change from step to
    step (a seeded explainer gives the same map on every call; its stepping view must not), while
    the clean map the top-k set comes from uses the explainer as configured; the explainer itself is
    left as it was."""
    from robex.attacks.base import stepping_explainer
    from robex.explainers.noise_tunnel import SmoothGrad

    x, y = batch
    sg = SmoothGrad(n_samples=20, sigma=0.1, seed=0)
    assert stepping_explainer(sg, None) is sg and stepping_explainer(Gradient(), 4).__class__ is Gradient
    view = stepping_explainer(sg, 4)
    assert (view.n_samples, view.seed, sg.n_samples, sg.seed) == (4, None, 20, 0)
    torch.manual_seed(0)
    a, b = view(digits_model, x[:4], y[:4]), view(digits_model, x[:4], y[:4])
    assert not torch.allclose(a, b)  # fresh draws
    assert torch.allclose(sg(digits_model, x[:4], y[:4]), sg(digits_model, x[:4], y[:4]))  # seeded: fixed

    calls = []
    original = SmoothGrad.heatmap_with_pullback

    def spy(self, model, xx, target):
        calls.append((self.n_samples, self.seed))
        return original(self, model, xx, target)

    attack = ExplanationManipulation(objective=TopKSuppression(k=6), threat=Threat(budget=4 / 255), steps=3,
                                     optimiser=SignStep(1 / 255), batch_size=16, show_progress=False,
                                     noise_samples=4)
    monkeypatch.setattr(SmoothGrad, "heatmap_with_pullback", spy)
    res = attack(digits_model, sg, x[:16], y[:16])
    assert calls[0] == (20, 0) and set(calls[1:]) == {(4, None)} and len(calls) == 1 + 4
    assert ((res.x_adv - x[:16]).abs().flatten(1).amax(1) <= 4 / 255 + 1e-6).all()
    with pytest.raises(RobexError, match="noise_samples=0 must be >= 1"):
        ExplanationManipulation(objective=TopKSuppression(k=6), threat=Threat(budget=0.1), noise_samples=0)
