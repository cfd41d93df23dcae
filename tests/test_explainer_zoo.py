"""Each explainer agrees with captum's (or zennit's) own output on a tiny ReLU network, LRP
conserves relevance, aggregates sum to one, and every explainer is differentiable for attacks."""
import pytest
import torch
from torch import nn

from robex.explainers.aggregate import AggMean, AggVar
from robex.explainers.base import heatmap
from robex.explainers.gradcam import GradCAM
from robex.explainers.gradient import Gradient
from robex.explainers.gradient_x_input import GradientXInput
from robex.explainers.guided_backprop import GuidedBackprop
from robex.explainers.integrated_gradients import IntegratedGradients
from robex.explainers.lrp import LRP
from robex.explainers.smoothgrad import SmoothGrad
from robex.pipeline import freeze


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
                                  lambda: SmoothGrad(n_samples=3, sigma=0.1),
                                  lambda: GradCAM(layer="3"),
                                  lambda: AggMean(members=[Gradient(), GuidedBackprop(), LRP()])])
def test_every_explainer_is_differentiable_under_softplus(make, setup):
    from robex.models.softplus_swap import relu_to_softplus

    model, x, y = setup
    explainer = make()
    with relu_to_softplus(model, beta=10.0):
        h, logits, pullback = explainer.heatmap_with_pullback(model, x, y)
        g = pullback(torch.randn_like(h))
    assert h.shape == (5, 8, 8) and g.shape == x.shape
    assert torch.isfinite(g).all() and g.abs().sum() > 0


def test_softplus_swap_restores_the_network_exactly(setup):
    from robex.models.layers import BetaSoftplus
    from robex.models.softplus_swap import relu_to_softplus

    model, x, _ = setup
    before = list(model.modules())
    out = model(x)
    with relu_to_softplus(model, beta=5.0) as swap:
        assert swap.count == 3
        assert sum(isinstance(m, BetaSoftplus) for m in model.modules()) == 3
        smooth = model(x)
        swap.set_beta(1e4)
        sharp = model(x)
    assert list(model.modules()) == before and all(type(a) is type(b) for a, b in zip(before, model.modules()))
    torch.testing.assert_close(model(x), out)
    assert (smooth - out).abs().max() > 1e-3  # softplus(5) differs from ReLU ...
    torch.testing.assert_close(sharp, out, atol=1e-3, rtol=0)  # ... and approaches it as beta grows
