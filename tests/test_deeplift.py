"""DeepLIFT: on the logit of a ReLU net the attributions sum to f_c(x) - f_c(baseline) (summation to
delta, which gradient x input does not satisfy); on the softmax they come close; a softplus network
is refused."""
import pytest
import torch
from torch import nn

from robex.errors import RobexError
from robex.explainers.deeplift import DeepLift
from robex.models.atex_cnn import atex_cnn
from robex.pipeline import freeze


def _delta(model, x, y, fill, softmax):
    with torch.no_grad():
        out, base = model(x), model(torch.full_like(x, fill))
        if softmax:
            out, base = out.softmax(1), base.softmax(1)
    return (out - base).gather(1, y.view(-1, 1)).squeeze(1)


def test_attributions_sum_to_the_change_of_the_output():
    from robex.explainers.gradient_x_input import GradientXInput

    torch.manual_seed(0)
    model = freeze(nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(),
                                 nn.Linear(4 * 8 * 8, 8), nn.ReLU(), nn.Linear(8, 3)))
    x, y = torch.rand(4, 1, 8, 8), torch.tensor([0, 1, 2, 0])
    attr = DeepLift(fill=0.25, output="logit").attribute(model, x, y)
    torch.testing.assert_close(attr.flatten(1).sum(1), _delta(model, x, y, 0.25, False), rtol=1e-4, atol=1e-5)
    gxi = GradientXInput().attribute(model, x - 0.25, y)  # not complete: the test can tell the two apart
    assert not torch.allclose(gxi.flatten(1).sum(1), _delta(model, x, y, 0.25, False), atol=1e-3)
    soft = DeepLift(fill=0.25).attribute(model, x, y)
    torch.testing.assert_close(soft.flatten(1).sum(1), _delta(model, x, y, 0.25, True), rtol=0, atol=0.02)
    assert attr.shape == x.shape


def test_a_softplus_network_is_refused():
    with pytest.raises(RobexError, match="BetaSoftplus"):
        DeepLift().attribute(freeze(atex_cnn()), torch.rand(1, 1, 28, 28), torch.tensor([0]))
