"""Noise tunnels (SmoothGrad, Uniform Gradient) and normalisers: agreement with captum on the same
noise draws, the seeded generator's independence from the global stream, and the normalisers'
defining properties."""
import numpy as np
import pytest
import torch

from robex.explainers.noise_tunnel import NoiseTunnel, SmoothGrad, Uniform, UniformGradient
from robex.normalisers import AbsChannelSum, AbsSumOne, Percentile, Raw, SignedChannelSum
from tests.test_explainer_zoo import tiny_relu_net


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(3)
    return tiny_relu_net(), torch.rand(4, 1, 8, 8), torch.tensor([0, 2, 1, 1])


def _captum_average(model, x, y, noisy_batches):
    """Mean over k of captum's Saliency (signed) at x + n_k: the reference for a noise tunnel."""
    from captum.attr import Saliency

    sal = Saliency(model)
    return torch.stack([sal.attribute(xn, target=y, abs=False) for xn in noisy_batches]).mean(0)


def test_uniform_gradient_equals_captum_saliency_averaged_over_the_same_uniform_draws(setup):
    model, x, y = setup
    n, radius = 7, 0.2
    ug = UniformGradient(n_samples=n, radius=radius, seed=11, normalise=Raw())
    got = ug(model, x, y)
    # the tunnel's draws: one (B*n, ...) tensor from its own generator, copies of image i consecutive
    gen = torch.Generator().manual_seed(11)
    u = (torch.rand((len(x) * n, *x.shape[1:]), generator=gen) * 2 - 1) * radius
    noisy = (x.repeat_interleave(n, 0) + u).view(len(x), n, *x.shape[1:])
    ref = _captum_average(model, x, y, [noisy[:, k] for k in range(n)])
    assert torch.allclose(got, ref, atol=1e-6)
    assert u.abs().max() <= radius and u.abs().max() > 0.9 * radius  # really uniform on [-r, r]


def test_mean_abs_equals_captums_noise_tunnel_of_saliency_with_its_default_abs(setup):
    """captum's NoiseTunnel(Saliency) averages Saliency(abs=True), i.e. mean |grad|: robex's
    aggregate=mean_abs, on the same draws."""
    from captum.attr import Saliency

    model, x, y = setup
    n, radius = 5, 0.2
    got = UniformGradient(n_samples=n, radius=radius, seed=4, normalise=Raw(), aggregate="mean_abs")(model, x, y)
    gen = torch.Generator().manual_seed(4)
    u = (torch.rand((len(x) * n, *x.shape[1:]), generator=gen) * 2 - 1) * radius
    noisy = (x.repeat_interleave(n, 0) + u).view(len(x), n, *x.shape[1:])
    sal = Saliency(model)
    ref = torch.stack([sal.attribute(noisy[:, k], target=y) for k in range(n)]).mean(0)  # abs=True default
    assert torch.allclose(got, ref, atol=1e-6)
    signed = UniformGradient(n_samples=n, radius=radius, seed=4, normalise=Raw())(model, x, y)
    assert (got - signed.abs()).min() >= -1e-7 and (got - signed.abs()).max() > 1e-4  # mean|g| >= |mean g|


def test_times_input_multiplies_by_the_input(setup):
    model, x, y = setup
    a = UniformGradient(n_samples=3, seed=1, normalise=Raw())(model, x, y)
    b = UniformGradient(n_samples=3, seed=1, times_input=True, normalise=Raw())(model, x, y)
    assert torch.allclose(b, a * x)


def test_smoothgrad_without_seed_uses_the_global_stream_as_before(setup):
    """seed: null reproduces the pre-tunnel SmoothGrad exactly (the committed ATEX / AGG-Mean numbers
    were computed with randn_like on the global generator)."""
    model, x, y = setup
    torch.manual_seed(5)
    got = SmoothGrad(n_samples=6, sigma=0.15, relative=True, normalise=Raw())(model, x, y)
    torch.manual_seed(5)
    reps = x.repeat_interleave(6, 0)
    scale = 0.15 * (x.flatten(1).amax(1) - x.flatten(1).amin(1))
    noisy = reps + torch.randn_like(reps) * scale.repeat_interleave(6).view(-1, 1, 1, 1)
    ref = _captum_average(model, x, y, [noisy.view(4, 6, 1, 8, 8)[:, k] for k in range(6)])
    assert torch.allclose(got, ref, atol=1e-6)


def test_seeded_tunnel_ignores_the_global_generator_and_seeds_differ(setup):
    model, x, y = setup
    sg = SmoothGrad(n_samples=5, seed=7)
    torch.manual_seed(0)
    a = sg(model, x, y)
    torch.manual_seed(123)
    torch.rand(1000)
    b = sg(model, x, y)
    assert torch.equal(a, b)
    assert not torch.allclose(a, SmoothGrad(n_samples=5, seed=8)(model, x, y))


def test_chunking_does_not_change_a_seeded_map(setup):
    model, x, y = setup
    a = NoiseTunnel(noise=Uniform(0.1), n_samples=4, seed=2, max_batch=4)(model, x, y)
    b = NoiseTunnel(noise=Uniform(0.1), n_samples=4, seed=2, max_batch=1000)(model, x, y)
    assert torch.allclose(a, b, atol=1e-7)


def test_normalisers():
    torch.manual_seed(0)
    r = torch.randn(3, 2, 5, 5)
    h = AbsSumOne()(r)
    assert h.shape == (3, 5, 5) and torch.allclose(h.flatten(1).sum(1), torch.ones(3)) and (h >= 0).all()
    s = SignedChannelSum()(r)
    assert torch.allclose(s, r.sum(1)) and (s < 0).any()
    assert torch.equal(Raw()(r), r)
    assert torch.allclose(AbsChannelSum()(r), r.abs().sum(1))
    p = Percentile(99)(r)
    ref = np.percentile(r.abs().sum(1).flatten(1).numpy(), 99, axis=1)
    assert torch.allclose(p, (r.abs().sum(1) / torch.tensor(ref).view(-1, 1, 1).float()).clamp(0, 1), atol=1e-5)
    assert p.max() == 1.0 and (p.flatten(1) == 1.0).float().sum(1).min() >= 1


def test_normaliser_is_configurable_per_explainer_and_used_by_the_attack_pullback(setup):
    """The attack differentiates the map the explainer returns, whatever its normaliser."""
    from robex.explainers.gradient import Gradient

    model, x, y = setup
    ex = Gradient(normalise=SignedChannelSum())
    h, _, pullback = ex.heatmap_with_pullback(model, x, y)
    assert torch.allclose(h, ex(model, x, y)) and (h < 0).any()
