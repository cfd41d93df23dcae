"""ReColorAdv's colour grid (robex/threats/colour.py) against the recoloradv package, every
perturbation model's random control (robex/attacks/random_perturbation.py), and the smoothed-
explanations attack settings (Delta, Delta+StAdv, Delta+StAdv+Recolor) on a tiny colour model."""
import pytest
import torch

from robex.attacks.random_perturbation import RandomPerturbation
from robex.attacks.targeted_map import TargetedMapAttack
from robex.errors import RobexError
from robex.explainers.gradient import Gradient
from robex.metrics.base import MetricInputs
from robex.metrics.similarity import CosineDistance
from robex.threats.colour import Recolor, grid_smoothness, identity_colour_grid, interpolate_grid
from robex.threats.composite import Composite
from robex.threats.delta import Delta
from robex.threats.flow import Flow


def _reference_grid(shape, seed=0, spread=0.06):
    """recoloradv's FullSpatial colour function (its CIELUV grid, 16 x 32 x 32) with random values."""
    from recoloradv import color_spaces, color_transformers

    torch.manual_seed(seed)
    t = color_transformers.FullSpatial(shape=shape, resolution_x=16, resolution_y=32, resolution_z=32,
                                       cspace=color_spaces.CIELUVColorSpace(), manual_gpu=False)
    with torch.no_grad():
        t.xform_params.add_(spread * (torch.rand_like(t.xform_params) * 2 - 1))
    return t, t.xform_params.detach().permute(0, 4, 1, 2, 3).contiguous()  # robex: (B, 3, L, u, v)


def test_the_colour_grid_interpolation_equals_recoloradvs_for_the_same_grid():
    t, grid = _reference_grid((3, 3, 8, 8))
    colours = torch.rand(3, 3, 8, 8)  # normalised LUV coordinates inside the grid's box
    with torch.no_grad():
        expected = t(colours)
    torch.testing.assert_close(interpolate_grid(grid, colours), expected, atol=1e-6, rtol=0)
    change = grid - identity_colour_grid((16, 32, 32), grid)  # robex moves colours by the change
    torch.testing.assert_close(colours + interpolate_grid(change, colours), expected, atol=1e-6, rtol=0)


def test_the_recolour_function_equals_recoloradvs_on_random_images_up_to_the_colour_conversion():
    """Whole function, RGB in and out: recoloradv's CIELUV conversion vs kornia's differ by a few
    1e-3 in RGB (white point constants, measured 0.0039 here), so that is the tolerance."""
    from recoloradv import color_spaces

    t, grid = _reference_grid((4, 3, 8, 8), seed=1)
    x = 0.25 + 0.5 * torch.rand(4, 3, 8, 8)  # colours whose LUV lies inside the grid's box
    space = color_spaces.CIELUVColorSpace()
    with torch.no_grad():
        expected = space.to_rgb(t(space.from_rgb(x)))
    got = Recolor().apply(x, [grid])
    assert (got - expected).abs().max() < 6e-3
    assert (got - x).abs().max() > 0.02  # and the grid really changed the colours


def test_the_identity_grid_returns_the_image_and_the_budget_and_smoothness_hold():
    torch.manual_seed(2)
    x = torch.rand(2, 3, 6, 6)  # saturated colours too: outside the grid's box the identity still holds
    rc = Recolor(budget=0.06, smoothness=0.05)
    (g,) = rc.init(x)
    assert g.shape == (2, 3, 16, 32, 32)
    assert (rc.apply(x, [g]) - x).abs().max() < 1e-4  # the LUV round trip only
    # no change: only the sqrt(1e-10) of every ordered neighbour pair (the reference code's epsilon)
    pairs = 2 * (15 * 32 * 32 + 16 * 31 * 32 + 16 * 32 * 31)  # ordered pairs along L, u and v
    torch.testing.assert_close(rc.penalty([g]), torch.full((2,), 0.05 * pairs * 1e-5), rtol=1e-3, atol=0)
    (c,) = rc.constrain([g + torch.randn_like(g)], x)
    assert (c - g).abs().max() <= 0.06 + 1e-7
    shifted = g + 0.05  # one constant change is perfectly smooth; random changes are not
    assert grid_smoothness(shifted - g).max() < 1.0 < 100.0 < grid_smoothness(c - g).min()
    with pytest.raises(RobexError, match="RGB images"):
        rc.init(torch.rand(2, 1, 6, 6))
    with pytest.raises(RobexError, match="must be >= 0"):
        Recolor(budget=-0.1)


@pytest.mark.parametrize("model_", [Delta(budget=0.03), Flow(budget=0.05), Recolor(budget=0.06),
                                    Composite({"recolor": Recolor(), "flow": Flow(), "delta": Delta()})],
                         ids=["delta", "flow", "recolor", "composite"])
def test_a_random_control_lies_in_its_budget_moves_the_image_and_repeats_with_its_seed(model_):
    torch.manual_seed(3)
    x = torch.rand(4, 3, 8, 8)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(192, 10))
    control = RandomPerturbation(model_, name="ctl", seed=5)
    a, b = control(model, Gradient(), x, None), control(model, Gradient(), x, None)
    assert torch.equal(a.x_adv, b.x_adv)
    assert a.x_adv.min() >= 0 and a.x_adv.max() <= 1
    assert (a.x_adv - x).abs().max() > 1e-3
    params = model_.sample(x, torch.Generator().manual_seed(0))
    for p, q in zip(params, model_.constrain(params, x)):  # samples already inside: constrain is a no-op
        torch.testing.assert_close(p, q)
    if isinstance(model_, Delta):
        assert a.facts["linf"].max() <= 0.03 + 1e-6


@pytest.fixture(scope="module")
def colour_model():
    torch.manual_seed(0)
    from robex.models.vgg import vgg_small

    return vgg_small(in_channels=3, image_size=8, widths=(8, 8), hidden=32).eval()


@pytest.fixture(scope="module")
def colour_images(digits):
    g = torch.Generator().manual_seed(0)
    colour = 0.3 + 0.7 * torch.rand(32, 3, 1, 1, generator=g)
    digit = digits.test_x[:32]
    return digit * colour + (1 - digit) * 0.2


class _Recording(Composite):
    """A composite that records how far each part's parameters are from the identity after every
    constrain (every step of the attack)."""

    def __init__(self, parts):
        super().__init__(parts)
        self.worst = [0.0] * len(self.parts)

    def constrain(self, params, x0):
        out = super().constrain(params, x0)
        for i, (part, p) in enumerate(zip(self.parts, self._split(out))):
            ident = part.init(x0)[0]
            self.worst[i] = max(self.worst[i], float((p[0] - ident).abs().max()))
        return out


def test_the_explanation_loss_reaches_every_parameter_group_through_double_backprop(colour_model, colour_images):
    x = colour_images[:4]
    both = Composite({"recolor": Recolor(), "flow": Flow(), "delta": Delta()})
    leaves = [p.requires_grad_(True) for p in both.sample(x, torch.Generator().manual_seed(1))]
    from robex.models.transforms import softplus_surrogate

    net, _ = softplus_surrogate(colour_model, 100.0)
    with torch.no_grad():
        cls = colour_model(x).argmax(1)
    x_adv = both.apply(x, leaves)
    h = Gradient().normalise(Gradient().attribute(net, x_adv, cls, create_graph=True))
    loss = ((h - torch.rand_like(h)) ** 2).sum() + both.penalty(leaves).sum()
    grads = torch.autograd.grad(loss, leaves)
    assert all(bool(g.abs().sum() > 0) and bool(torch.isfinite(g).all()) for g in grads)


@pytest.mark.parametrize("setting", ["delta", "delta+stadv", "delta+stadv+recolor"])
def test_each_attack_setting_gets_closer_to_its_target_than_its_random_control(setting, colour_model,
                                                                                colour_images):
    x, x_t = colour_images[:8], colour_images[8:16]
    ex = Gradient()
    with torch.no_grad():
        cls, cls_t = colour_model(x).argmax(1), colour_model(x_t).argmax(1)
    h_t = ex(colour_model, x_t, cls_t)
    parts = {"recolor": Recolor(), "flow": Flow(), "delta": Delta()}
    names = setting.replace("stadv", "flow").split("+")
    chosen = {k: parts[k] for k in ("recolor", "flow", "delta") if k in names}
    threat = _Recording(chosen)
    attack = TargetedMapAttack(iterations=40, lr=1e-3, beta_start=100.0, beta_end=None, batch_size=8,
                               show_progress=False, perturbation=threat)
    res = attack(colour_model, ex, x, cls, h_target=h_t)
    control = RandomPerturbation(Composite(dict(chosen)), seed=0)(colour_model, ex, x, cls)
    cosd = CosineDistance()

    def score(x_adv):
        return cosd(MetricInputs(h_clean=None, h_adv=ex(colour_model, x_adv, cls), h_target=h_t)).mean()

    start = cosd(MetricInputs(h_clean=None, h_adv=ex(colour_model, x, cls), h_target=h_t)).mean()
    assert score(res.x_adv) < score(control.x_adv) - 0.02
    assert score(res.x_adv) < start - 0.02
    budgets = {"recolor": 0.06, "flow": 0.05, "delta": 8 / 255}
    for name, worst in zip(chosen, threat.worst):  # every step stayed inside every part's budget
        assert worst <= budgets[name] + 1e-6, (name, worst)
    assert res.x_adv.min() >= 0 and res.x_adv.max() <= 1
