"""Each explainer agrees with captum's (or zennit's) own output on a tiny ReLU network, LRP
conserves relevance, aggregates sum to one, and every explainer is differentiable for attacks."""
import pytest
import torch
from torch import nn

from robex.explainers.aggregate import AggMean, AggVar
from robex.explainers.gradcam import GradCAM
from robex.explainers.gradient import Gradient
from robex.explainers.gradient_x_input import GradientXInput
from robex.explainers.guided_backprop import GuidedBackprop
from robex.explainers.integrated_gradients import IntegratedGradients
from robex.explainers.lrp import LRP
from robex.explainers.noise_tunnel import SmoothGrad
from robex.normalisers import AbsSumOne
from robex.pipeline import freeze

heatmap = AbsSumOne()


def tiny_relu_net(bias=True, seed=0):
    torch.manual_seed(seed)
    return freeze(nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1, bias=bias), nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1, bias=bias), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(6 * 4 * 4, 12, bias=bias), nn.ReLU(), nn.Linear(12, 3, bias=bias)))


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(1)
    return tiny_relu_net(), torch.rand(5, 1, 8, 8), torch.tensor([0, 1, 2, 1, 0])


def test_gradient_and_gradient_x_input_equal_captum(setup):
    from captum.attr import InputXGradient, Saliency

    model, x, y = setup
    torch.testing.assert_close(Gradient().attribute(model, x, y), Saliency(model).attribute(x, y, abs=False))
    torch.testing.assert_close(GradientXInput().attribute(model, x, y), InputXGradient(model).attribute(x, y))


def test_guided_backprop_equals_captum(setup):
    from captum.attr import GuidedBackprop as CaptumGB

    model, x, y = setup
    torch.testing.assert_close(GuidedBackprop().attribute(model, x, y), CaptumGB(model).attribute(x, y))


def test_integrated_gradients_equals_captum_on_softmax(setup):
    from captum.attr import IntegratedGradients as CaptumIG

    model, x, y = setup
    ours = IntegratedGradients(steps=30).attribute(model, x, y)
    ref = CaptumIG(lambda inp: model(inp).softmax(1)).attribute(x, torch.zeros_like(x), target=y, n_steps=30,
                                                                method="riemann_right")
    torch.testing.assert_close(ours, ref.float(), rtol=1e-4, atol=1e-7)


def test_gradcam_equals_captum(setup):
    from captum.attr import LayerAttribution, LayerGradCam

    model, x, y = setup
    ours = GradCAM(layer="3").attribute(model, x, y)
    cam = LayerGradCam(model, model[3]).attribute(x.clone().requires_grad_(True), y, relu_attributions=True)
    torch.testing.assert_close(ours, LayerAttribution.interpolate(cam, (8, 8), "bilinear"))


def test_lrp_equals_zennit_and_conserves_relevance():
    from zennit.attribution import Gradient as ZGradient

    from robex.explainers.lrp import lrp_composite

    model = tiny_relu_net(bias=False, seed=3)
    x, y = torch.rand(4, 1, 8, 8), torch.tensor([0, 1, 2, 0])
    ours = LRP().attribute(model, x, y)
    logits = model(x).gather(1, y.view(-1, 1)).squeeze(1)
    with ZGradient(model, lrp_composite(model, 0.0, 1.0, 1e-6)) as attributor:
        out, ref = attributor(x, lambda o: torch.zeros_like(o).scatter_(1, y.view(-1, 1), o.gather(1, y.view(-1, 1))))
    torch.testing.assert_close(ours, ref)
    positive = logits > 0  # z+ conserves the relevance of a positive logit (no biases)
    assert positive.any()
    torch.testing.assert_close(ours.flatten(1).sum(1)[positive], logits[positive], rtol=1e-3, atol=1e-5)


def test_aggregates_sum_to_one_and_average_their_members(setup):
    model, x, y = setup
    members = [Gradient(), GuidedBackprop(), LRP()]
    agg = AggMean(members=members)
    h = agg(model, x, y)
    torch.testing.assert_close(h.flatten(1).sum(1), torch.ones(len(x)))
    expected = torch.stack([m(model, x, y) for m in members]).mean(0)
    torch.testing.assert_close(h, expected)
    v = AggVar(members=members)(model, x, y)
    torch.testing.assert_close(v.flatten(1).sum(1), torch.ones(len(x)))
    assert (v >= 0).all()


@pytest.mark.parametrize("make", [Gradient, GradientXInput, GuidedBackprop, LRP,
                                  lambda: IntegratedGradients(steps=4),
                                  lambda: SmoothGrad(n_samples=3, sigma=0.1, relative=False, seed=0),
                                  lambda: GradCAM(layer="3"),
                                  lambda: AggMean(members=[Gradient(), GuidedBackprop(), LRP()])])
def test_every_explainer_pullback_matches_finite_differences_on_the_surrogate(make, setup):
    """What an attack differentiates is right: <pullback(v), d> equals the central difference of
    <v, map(x + t d)> (float64, softplus surrogate of the ReLU net). SmoothGrad uses absolute noise:
    a relative noise level is a per-image constant (detached by design), which a finite difference
    of the map would differentiate."""
    import copy

    from robex.models.transforms import softplus_surrogate

    model, x, y = setup
    net, handle = softplus_surrogate(copy.deepcopy(model).double(), beta=10.0)
    assert handle.count == 3
    x = x.double().clamp(0.05, 0.95)
    explainer = make()
    h, _, pullback = explainer.heatmap_with_pullback(net, x, y)
    gen = torch.Generator().manual_seed(0)
    v, d = torch.randn(h.shape, generator=gen, dtype=h.dtype), torch.randn(x.shape, generator=gen, dtype=x.dtype)
    analytic = (pullback(v) * d).sum().item()
    t = 1e-5
    numeric = ((v * explainer(net, x + t * d, y)).sum() - (v * explainer(net, x - t * d, y)).sum()).item() / (2 * t)
    assert abs(analytic) > 1e-8
    assert abs(analytic - numeric) <= 1e-4 * max(1.0, abs(numeric)), (analytic, numeric)


def test_softplus_surrogate_leaves_the_model_untouched(setup):
    from robex.models.layers import BetaSoftplus
    from robex.models.transforms import softplus_surrogate

    model, x, _ = setup
    before = [type(m) for m in model.modules()]
    out = model(x)
    net, handle = softplus_surrogate(model, beta=5.0)
    assert handle.count == 3 and sum(isinstance(m, BetaSoftplus) for m in net.modules()) == 3
    smooth = net(x)
    handle.set_beta(1e4)
    sharp = net(x)
    assert [type(m) for m in model.modules()] == before and not any(isinstance(m, BetaSoftplus) for m in model.modules())
    torch.testing.assert_close(model(x), out)
    assert (smooth - out).abs().max() > 1e-3  # softplus(5) differs from ReLU ...
    torch.testing.assert_close(sharp, out, atol=1e-3, rtol=0)  # ... and approaches it as beta grows


def test_agg_var_follows_the_papers_formula_and_reduces_to_its_member(setup):
    """AGG-Var (Rieger & Hansen 2020): mean / (std + eps) over the members' normalised maps, per
    pixel, with eps = c_factor x the image's mean std, then normalised; written here in numpy."""
    import numpy as np

    from robex.normalisers import AbsSumOne

    model, x, y = setup
    members = [Gradient(), GuidedBackprop(), LRP()]
    maps = np.stack([m(model, x, y).numpy() for m in members]).astype(np.float64)  # (3, B, H, W)
    mean, std = maps.mean(0), maps.std(0)
    eps = 10.0 * std.reshape(len(x), -1).mean(1)[:, None, None]
    ref = np.abs(mean / (std + eps))
    ref = ref / ref.reshape(len(x), -1).sum(1)[:, None, None]
    got = AggVar(members=members, c_factor=10.0)(model, x, y).numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-7)
    same = AggVar(members=[Gradient(), Gradient()])(model, x, y)  # no spread: the member's own map
    torch.testing.assert_close(same, AbsSumOne()(Gradient().attribute(model, x, y)))
