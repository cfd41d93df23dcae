"""beta-smoothing (robex/explainers/beta_smoothing.py): a large beta gives the ReLU gradient, the
smoothed network shares the model's weights and never changes the model, inside an attack it
overrides the attack's surrogate beta, and its top-1 agreement is counted."""
import pytest
import torch
from torch import nn

from robex.errors import RobexError
from robex.explainers.base import input_gradient
from robex.explainers.beta_smoothing import BetaSmoothing
from robex.metrics.agreement import SmoothedTop1Agreement
from robex.metrics.base import MetricInputs
from robex.models.layers import BetaSoftplus
from robex.models.transforms import beta_smoothed, softplus_surrogate


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 8),
                         nn.ReLU(), nn.Linear(8, 3)).double().eval()


def test_a_large_beta_approaches_the_relu_gradient_and_a_small_one_does_not():
    net, x = _net(), torch.rand(5, 1, 6, 6, dtype=torch.float64)
    target = net(x).argmax(1)
    relu_grad = input_gradient(net, x, target)
    errors = [(BetaSmoothing(beta=b).attribute(net, x, target) - relu_grad).abs().max().item()
              for b in (0.8, 10.0, 1e3, 1e7)]
    assert errors == sorted(errors, reverse=True) and errors[0] > 1e-2  # beta 0.8 is really smooth
    assert errors[-1] < 1e-8  # beta -> infinity: the ReLU network's gradient


def test_the_smoothed_net_shares_weights_and_leaves_the_model_alone():
    net = _net()
    smooth = beta_smoothed(net, 0.8)
    assert sum(isinstance(m, nn.ReLU) for m in net.modules()) == 2  # the model keeps its ReLUs
    assert all(isinstance(m, BetaSoftplus) and m.beta == 0.8 for m in (smooth[1], smooth[4]))
    assert smooth[0].weight is net[0].weight
    with torch.no_grad():
        net[0].weight.add_(1.0)  # trained in place: the smoothed view follows
    assert torch.equal(smooth[0].weight, net[0].weight)
    with pytest.raises(RobexError, match="beta"):
        BetaSmoothing(beta=0.0)


def test_inside_an_attack_the_explained_network_is_the_beta_network_not_the_surrogate():
    net, x = _net(), torch.rand(4, 1, 6, 6, dtype=torch.float64)
    target = net(x).argmax(1)
    surrogate, handle = softplus_surrogate(net, 100.0)  # what an attack passes to the explainer
    ex = BetaSmoothing(beta=0.8)
    torch.testing.assert_close(ex(surrogate, x, target), ex(net, x, target))
    assert all(m.beta == 100.0 for m in handle.activations)  # the attack's surrogate is untouched


def test_top1_agreement_counts_images_whose_prediction_survives_the_smoothing():
    net, x = _net(), 3 * torch.randn(50, 1, 6, 6, dtype=torch.float64)  # spread: the logits' order varies

    def agreement(beta, batch_size=256):
        return SmoothedTop1Agreement(beta, batch_size)(MetricInputs(h_clean=x, x=x, model=net))

    assert agreement(1e4).tolist() == [1.0] * 50
    smooth = beta_smoothed(net, 1.0)
    with torch.no_grad():
        expected = (smooth(x).argmax(1) == net(x).argmax(1)).float()
    assert 0 < expected.mean() < 1  # the test can tell agreement from disagreement
    torch.testing.assert_close(agreement(1.0, batch_size=7), expected)
    with pytest.raises(RobexError, match="beta"):
        SmoothedTop1Agreement(0.0)
