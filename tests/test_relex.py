"""RelEx: the loss falls and the mask stays in [0, 1]; the mask finds the one region a model looks at;
batching over images and noise copies is the per-image optimisation; fill colour and noise scale
follow the model's normalisation; bad settings are one-line errors."""
import pytest
import torch
from torch import nn

from robex.errors import RobexError
from robex.explainers.relex import RelEx, fill_colour, noise_scale
from robex.models.normalize import Normalize
from robex.pipeline import freeze


def small_net(channels=1, seed=0):
    torch.manual_seed(seed)
    return freeze(nn.Sequential(nn.Conv2d(channels, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                                nn.Linear(4 * 4 * 4, 3)))


class RegionModel(nn.Module):
    """Class 0's logit grows with the brightness of rows/cols 2..4; class 1's logit is a constant."""

    def forward(self, x):
        region = x[:, :, 2:5, 2:5].flatten(1).sum(1)
        return torch.stack([8.0 * (region - 4.0), torch.zeros_like(region)], 1)


def test_the_loss_falls_and_the_mask_stays_in_the_unit_interval():
    model, x = small_net(), torch.rand(3, 1, 8, 8)
    target = model(x).argmax(1)
    mask, losses = RelEx(iterations=40, n_noise=8).optimise(model, x, target)
    assert losses.shape == (40, 3)
    assert (losses[-5:].mean(0) < losses[:5].mean(0)).all()
    assert mask.shape == x.shape and mask.min() >= 0 and mask.max() <= 1


def test_the_mask_puts_its_mass_on_the_region_the_model_reads():
    x = torch.full((2, 1, 8, 8), 0.9)
    mask = RelEx(iterations=50, n_noise=8, fill=0.0).attribute(freeze(RegionModel()), x, torch.tensor([0, 0]))
    inside = torch.zeros(8, 8, dtype=torch.bool)
    inside[2:5, 2:5] = True
    m_in, m_out = mask[:, 0][:, inside].mean(1), mask[:, 0][:, ~inside].mean(1)
    assert (m_in > 0.5).all() and (m_in > 20 * m_out).all(), (m_in, m_out)


def test_batched_optimisation_equals_a_loop_over_images():
    model, x = small_net(seed=2), torch.rand(4, 1, 8, 8)
    target = torch.tensor([0, 1, 2, 1])
    relex = RelEx(iterations=6, n_noise=5)
    batched = relex.attribute(model, x, target)
    loop = torch.cat([relex.attribute(model, x[i:i + 1], target[i:i + 1]) for i in range(4)])
    chunked = RelEx(iterations=6, n_noise=5, max_batch=20).attribute(model, x, target)  # 2 images per pass
    torch.testing.assert_close(batched, loop, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(batched, chunked, rtol=1e-5, atol=1e-6)
    assert not torch.equal(batched[0], batched[1])


def test_fill_and_noise_follow_the_models_normalisation():
    norm = Normalize((0.2, 0.4, 0.6), (0.5, 0.25, 0.1))
    model = nn.Sequential(norm, nn.Flatten())
    x = torch.rand(2, 3, 4, 4)
    torch.testing.assert_close(fill_colour(model, x, "auto"), norm.mean)
    seen = norm(x).flatten(1)
    want = 0.1 * (seen.amax(1) - seen.amin(1)).view(2, 1, 1, 1, 1) * norm.std.unsqueeze(0)
    torch.testing.assert_close(noise_scale(model, x, 0.1), want)
    plain = nn.Flatten()
    torch.testing.assert_close(fill_colour(plain, x, "auto"), x.mean(dim=(2, 3), keepdim=True))
    torch.testing.assert_close(noise_scale(plain, x, 0.1).flatten(), 0.1 * (x.flatten(1).amax(1) - x.flatten(1).amin(1)))
    with pytest.raises(RobexError, match="no Normalize layer"):
        fill_colour(plain, x, "normalize")


@pytest.mark.parametrize("kwargs,message", [({"iterations": 0}, "iterations=0"), ({"n_noise": 0}, "n_noise=0"),
                                            ({"sigma": -1}, "sigma=-1"), ({"fill": "blur"}, "fill='blur'"),
                                            ({"momentum": 1.5}, "momentum=1.5")])
def test_bad_settings_are_one_line_errors(kwargs, message):
    with pytest.raises(RobexError, match=message):
        RelEx(**kwargs)


def test_an_attack_cannot_differentiate_through_relex():
    with pytest.raises(RobexError, match="not differentiable"):
        RelEx(iterations=1, n_noise=1).attribute(small_net(), torch.rand(1, 1, 8, 8), torch.tensor([0]), create_graph=True)


@pytest.mark.parametrize("normalised", [False, True])
def test_relex_equals_the_authors_per_image_procedure(normalised):
    """robex's batched RelEx (all images and copies masked both ways in one pass, its own momentum
    step) gives the masks of an independent plain-torch re-implementation of the authors' procedure
    (robex/bench/authors_relex.py: one image at a time, two passes of B copies in normalised space,
    torch.optim.SGD), with the same random draws; a different lambda2 gives other masks, so the
    match can fail."""
    from robex.bench.authors_relex import authors_relex

    torch.manual_seed(3)
    body = small_net(channels=3, seed=4)
    model = freeze(nn.Sequential(Normalize((0.4, 0.5, 0.3), (0.2, 0.3, 0.25)), *body)) if normalised else body
    x, target = torch.rand(3, 3, 8, 8), torch.tensor([0, 2, 1])
    fill = "auto" if normalised else 0.0  # the authors multiply the (normalised) input by the mask
    ours = RelEx(iterations=8, n_noise=6, fill=fill, max_batch=1000).attribute(model, x, target)
    theirs = authors_relex(model, x, target, iterations=8, n_noise=6)
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)
    assert (ours - x.new_full(x.shape, 0.005)).abs().max() > 0.05  # the masks moved from their start
    other = authors_relex(model, x, target, iterations=8, n_noise=6, lambda2=0.0)
    assert (other - theirs).abs().max() > 1e-3


def test_a_longer_run_resumes_from_a_shorter_runs_saved_state_bitwise(tmp_path):
    """state_cache: 100 iterations after 50 continue from the 50-iteration state (the mask, momentum,
    noise generator) and give bitwise the masks and losses of 100 iterations from scratch; a run of
    50 after one of 100 reads the state saved on the way; other weights never reuse a state."""
    model, x = small_net(channels=3, seed=6), torch.rand(3, 3, 8, 8)
    target = torch.tensor([0, 1, 2])
    kw = dict(n_noise=4, max_batch=16)  # two images per pass: chunks of 2 and 1
    scratch_m, scratch_l = RelEx(iterations=100, **kw).optimise(model, x, target)
    short = RelEx(iterations=50, state_cache=tmp_path / "a", **kw)
    m50, _ = short.optimise(model, x, target)
    assert len(list((tmp_path / "a").rglob("50.pt"))) == 2 and not list((tmp_path / "a").rglob("100.pt"))
    resumed = RelEx(iterations=100, state_cache=tmp_path / "a", **kw)
    calls = {"n": 0}
    forward = model.forward
    model.forward = lambda z: (calls.__setitem__("n", calls["n"] + 1), forward(z))[1]
    m100, l100 = resumed.optimise(model, x, target)
    model.forward = forward
    assert calls["n"] == 2 * 50  # two chunks x the 50 missing iterations
    assert torch.equal(m100, scratch_m) and torch.equal(l100, scratch_l)
    # the other way round: 50 after 100 reads the state saved at iteration 50
    RelEx(iterations=100, state_cache=tmp_path / "b", **kw).optimise(model, x, target)
    again, _ = RelEx(iterations=50, state_cache=tmp_path / "b", **kw).optimise(model, x, target)
    assert torch.equal(again, m50) and torch.equal(m50, RelEx(iterations=50, **kw).optimise(model, x, target)[0])
    other = small_net(channels=3, seed=7)
    fresh, _ = RelEx(iterations=100, state_cache=tmp_path / "a", **kw).optimise(other, x, target)
    assert torch.equal(fresh, RelEx(iterations=100, **kw).optimise(other, x, target)[0])
    assert not torch.equal(fresh, m100)
