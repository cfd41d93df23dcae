import pytest
import torch
from torch import nn

from robex.explainers import sequential_tape
from robex.explainers.base import input_gradient
from robex.normalisers import AbsSumOne
from robex.explainers.gradient import Gradient
from robex.explainers.noise_tunnel import SmoothGrad
from robex.models.atex_cnn import atex_cnn
from robex.pipeline import freeze


def _double_backprop(model, x, y, v):
    x = x.clone().requires_grad_(True)
    g = input_gradient(model, x, y, create_graph=True)
    (r,) = torch.autograd.grad((g * v).sum(), x)
    return g.detach(), r


@pytest.mark.parametrize("act", ["softplus", "relu", "relu_tanh"])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_tape_gradient_and_pullback_equal_double_backprop(act, layout):
    torch.manual_seed(0)
    model = freeze(atex_cnn(image_size=12, channels=6, hidden=16, beta=5.0))
    if act == "relu":
        model = freeze(nn.Sequential(*[nn.ReLU() if type(m).__name__ == "BetaSoftplus" else m for m in model]))
    if act == "relu_tanh":  # the ATEX authors' network: ReLU in the conv part, tanh after fc1
        layers = [nn.ReLU() if type(m).__name__ == "BetaSoftplus" else m for m in model]
        layers[-2] = nn.Tanh()
        model = freeze(nn.Sequential(*layers))
    if layout == "channels_last":
        model = model.to(memory_format=torch.channels_last)
    x = torch.rand(5, 1, 12, 12)
    x[:, :, :3] = 0.0  # flat region: ties inside max-pool windows
    y = torch.randint(0, 10, (5,))
    v = torch.randn(5, 1, 12, 12)
    assert sequential_tape.supports(model)
    g_ref, r_ref = _double_backprop(model, x, y, v)
    phi, logits, pullback = sequential_tape.gradient_with_pullback(model, x, y)
    torch.testing.assert_close(phi, g_ref, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(logits, model(x))
    r = pullback(v)
    if act == "relu":
        assert r.abs().max() == 0  # piecewise linear: zero Hessian
    else:
        assert r.abs().max() > 0
    torch.testing.assert_close(r, r_ref, rtol=1e-4, atol=1e-6)


def test_gradient_heatmap_pullback_matches_generic_double_backprop():
    torch.manual_seed(1)
    model = freeze(atex_cnn(image_size=12, channels=4, hidden=8, beta=3.0))
    x, y, v = torch.rand(4, 1, 12, 12), torch.randint(0, 10, (4,)), torch.randn(4, 12, 12)
    fast = Gradient()
    h1, l1, pb1 = fast.heatmap_with_pullback(model, x, y)
    h2, l2, pb2 = super(Gradient, fast).heatmap_with_pullback(model, x, y)  # the generic route
    torch.testing.assert_close(h1, h2)
    torch.testing.assert_close(pb1(v), pb2(v), rtol=1e-4, atol=1e-6)


def test_unsupported_models_fall_back_to_autograd():
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.GELU(), nn.Linear(8, 3))
    assert not sequential_tape.supports(model)
    x, y = torch.rand(3, 1, 4, 4), torch.tensor([0, 1, 2])
    h, logits, pb = Gradient().heatmap_with_pullback(model, x, y)
    assert pb(torch.ones_like(h)).shape == x.shape


def test_heatmap_convention_sums_to_one_over_channels():
    r = torch.randn(3, 3, 5, 5)
    h = AbsSumOne()(r)
    assert h.shape == (3, 5, 5)
    torch.testing.assert_close(h.flatten(1).sum(1), torch.ones(3))
    torch.testing.assert_close(h[0], r[0].abs().sum(0) / r[0].abs().sum())


def test_smoothgrad_is_the_mean_gradient_over_its_noise_copies():
    torch.manual_seed(2)
    model = freeze(atex_cnn(image_size=8, channels=4, hidden=8))
    x, y = torch.rand(3, 1, 8, 8), torch.tensor([1, 2, 3])
    sg = SmoothGrad(n_samples=5, sigma=0.1, relative=False, max_batch=4)  # chunks of 1 image
    torch.manual_seed(7)
    ours = sg.attribute(model, x, y)
    torch.manual_seed(7)
    ref = []
    for i in range(3):  # same draw order as the chunked implementation
        noisy = x[i:i + 1].repeat(5, 1, 1, 1)
        noisy = noisy + torch.randn_like(noisy) * 0.1
        ref.append(input_gradient(model, noisy, y[i].repeat(5)).mean(0, keepdim=True))
    torch.testing.assert_close(ours, torch.cat(ref))


@pytest.mark.parametrize("c_in,stride,padding,size", [(1, 1, 1, 12), (3, 2, 1, 13), (3, 2, 0, 9), (4, 1, 1, 8)])
def test_tape_conv_adjoint_equals_autograd_on_both_routes(c_in, stride, padding, size):
    """The tape's conv adjoint (matmul + fold for <= 3 input channels, conv_transpose2d above)
    is the exact transpose of the layer: <conv(x), g> = <x, adjoint(g)> via autograd, for
    strides and sizes that leave a remainder."""
    torch.manual_seed(0)
    layer = nn.Conv2d(c_in, 5, 3, stride=stride, padding=padding, bias=False)
    x = torch.randn(2, c_in, size, size, requires_grad=True)
    out = layer(x)
    g = torch.randn_like(out)
    (ref,) = torch.autograd.grad(out, x, g)
    got = sequential_tape._conv_transpose(layer, g.detach(), x.shape)
    assert got.shape == x.shape
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)


def test_tape_pools_before_the_activation_without_changing_gradient_or_pullback():
    """The tape evaluates max-pool before the activation it follows (they commute for monotone
    activations): gradient and pullback still equal double backprop where windows saturate (softplus
    exactly 0 for beta z below about -17: the activations tie, z does not) and where they tie in z."""
    torch.manual_seed(1)
    model = freeze(atex_cnn(image_size=12, channels=6, hidden=16, beta=10.0))
    with torch.no_grad():
        model[0].bias[:3] -= 4.0  # half the channels far below softplus's saturation
    layers = [type(m).__name__ for m in sequential_tape.order_pool_and_activation(list(model))]
    assert layers[:3] == ["Conv2d", "MaxPool2d", "BetaSoftplus"]
    x = torch.rand(4, 1, 12, 12)
    x[:, :, :4] = 0.0
    y = torch.randint(0, 10, (4,))
    v = torch.randn(4, 1, 12, 12)
    g_ref, r_ref = _double_backprop(model, x, y, v)
    phi, logits, pullback = sequential_tape.gradient_with_pullback(model, x, y)
    torch.testing.assert_close(logits, model(x))
    torch.testing.assert_close(phi, g_ref, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(pullback(v), r_ref, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("shape", [(3, 5, 8, 8), (2, 4, 7, 9)])
def test_pool_select_reads_channels_last_in_memory_order(shape):
    """The tape's max-pool tangent (values at the argmax positions) gathers channels_last tensors in
    their memory order and returns a channels_last result with the same values as NCHW indexing."""
    import torch.nn.functional as F

    torch.manual_seed(0)
    a = torch.randn(*shape).to(memory_format=torch.channels_last)
    _, idx = F.max_pool2d(a, 2, return_indices=True)
    t = torch.randn(*shape).to(memory_format=torch.channels_last)
    n, c = shape[:2]
    expected = torch.stack([torch.stack([t[i, j].flatten()[idx[i, j].flatten()].view(idx.shape[2:])
                                         for j in range(c)]) for i in range(n)])
    got = sequential_tape._pool_select(t, idx)
    assert got.is_contiguous(memory_format=torch.channels_last) and not got.is_contiguous()
    assert torch.equal(got, expected)
    assert torch.equal(sequential_tape._pool_select(t.contiguous(), idx.contiguous()), expected)
