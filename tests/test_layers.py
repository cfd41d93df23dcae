"""robex's softplus (robex/models/layers.py) is torch's softplus to float rounding, in value, first
and second derivative, including z = 0 and the saturated ends, in float32 and float64."""
import torch
import torch.nn.functional as F
import pytest

from robex.models.layers import BetaSoftplus, softplus


@pytest.mark.parametrize("beta", [1.0, 10.0, 30.0, 100.0])
def test_value_matches_torch_softplus_to_rounding(beta):
    z = torch.cat([torch.linspace(-50, 50, 200001), torch.tensor([0.0, -0.0, 1e-30, -1e-30, 88.0, -88.0])])
    ours, ref = softplus(z, beta), F.softplus(z, beta=beta, threshold=20.0)
    assert torch.isfinite(ours).all()
    assert ((ours - ref).abs() / ref.abs().clamp_min(1.0)).max() <= 2.4e-7  # relative above 1, absolute below
    assert torch.equal(ours[z * beta > 17], z[z * beta > 17])  # saturated: exactly z, as torch past 20
    assert (ours >= 0).all()
    z64 = z.double()  # against the exact form with log1p, in float64
    exact = z64.clamp_min(0) + torch.log1p(torch.exp(-beta * z64.abs())) / beta
    assert ((softplus(z64, beta) - exact).abs() / exact.abs().clamp_min(1.0)).max() <= 1e-15


@pytest.mark.parametrize("beta", [10.0, 30.0])
def test_first_and_second_derivatives_match_torch(beta):
    z = torch.cat([torch.randn(5000, dtype=torch.float64) * 3 / beta, torch.zeros(3, dtype=torch.float64)])
    z1, z2 = z.clone().requires_grad_(True), z.clone().requires_grad_(True)
    w = torch.randn_like(z)
    (g1,) = torch.autograd.grad((w * softplus(z1, beta)).sum(), z1, create_graph=True)
    (g2,) = torch.autograd.grad((w * F.softplus(z2, beta=beta, threshold=1e9)).sum(), z2, create_graph=True)
    assert torch.allclose(g1, g2, rtol=1e-12, atol=1e-14)
    assert torch.allclose(g1[-3:] / w[-3:], torch.full((3,), 0.5, dtype=torch.float64))  # sigmoid(0), also at z = 0
    (h1,) = torch.autograd.grad((g1 ** 2).sum(), z1)
    (h2,) = torch.autograd.grad((g2 ** 2).sum(), z2)
    assert torch.allclose(h1, h2, rtol=1e-10, atol=1e-12)
    assert torch.autograd.gradgradcheck(lambda q: softplus(q, beta), (z1[:20].detach().clone().requires_grad_(True),))


def test_module_uses_its_current_beta_and_derivative_is_sigmoid():
    sp = BetaSoftplus(10.0)
    z = torch.linspace(-2, 2, 101)
    a = sp(z)
    sp.beta = 30.0
    assert not torch.allclose(a, sp(z)) and torch.allclose(sp(z), F.softplus(z, beta=30.0), atol=2.4e-7)
    assert torch.allclose(sp.derivative(z), torch.sigmoid(30.0 * z))
