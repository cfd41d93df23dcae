"""Infidelity with square removal (robex/metrics/infidelity.py) against captum's infidelity on the
same patches, and the properties that define it."""
import pytest
import torch
from torch import nn

from robex.errors import RobexError
from robex.metrics.base import MetricInputs
from robex.metrics.infidelity import Infidelity, infidelity, square_masks


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.Softplus(), nn.Flatten(),
                         nn.Linear(4 * 8 * 8, 5)).double().eval()


@pytest.mark.parametrize("normalize", [True, False])
def test_infidelity_equals_captums_on_the_same_square_patches(normalize):
    from captum.metrics import infidelity as captum_infidelity

    model, x = _model(), torch.rand(3, 2, 8, 8, dtype=torch.float64)
    target = torch.tensor([0, 3, 1])
    phi = torch.randn_like(x)
    masks = square_masks(3, 7, 8, 8, 3, torch.Generator().manual_seed(1))
    ours = infidelity(model, x, phi, target, masks, normalize=normalize)

    def perturb(inputs):  # captum repeats each input n_perturb_samples times, image by image
        pert = masks.flatten(0, 1).unsqueeze(1).to(inputs.dtype) * inputs
        return pert, inputs - pert

    theirs = captum_infidelity(model, perturb, x, phi, target=target, n_perturb_samples=7, normalize=normalize)
    torch.testing.assert_close(ours.double(), theirs.double(), rtol=1e-5, atol=1e-8)


def test_square_masks_are_squares_inside_the_image():
    masks = square_masks(4, 20, 9, 7, 3, torch.Generator().manual_seed(0))
    assert masks.shape == (4, 20, 9, 7) and bool((masks.flatten(2).sum(2) == 9).all())
    rows, cols = masks.any(3), masks.any(2)
    assert bool((rows.sum(2) == 3).all() and (cols.sum(2) == 3).all())
    with pytest.raises(RobexError, match="square=8"):
        square_masks(1, 1, 9, 7, 8, torch.Generator())


def test_an_exact_attribution_of_a_linear_model_has_zero_infidelity_and_a_wrong_one_does_not():
    torch.manual_seed(0)
    lin = nn.Sequential(nn.Flatten(), nn.Linear(2 * 8 * 8, 3)).double().eval()
    x = torch.rand(4, 2, 8, 8, dtype=torch.float64)
    target = torch.tensor([0, 1, 2, 0])
    exact = lin[1].weight[target].view_as(x).detach()  # f(x) - f(x - I) = <I, w_c> exactly
    metric = Infidelity(n_perturb=10, square=3, normalize=False)
    ins = lambda phi: MetricInputs(h_clean=phi, x=x, model=lin, target=target, extra={"attribution": phi})  # noqa: E731
    assert metric(ins(exact)).max() < 1e-12
    assert metric(ins(-exact)).min() > 1e-6
    scaled = Infidelity(n_perturb=10, square=3, normalize=True)  # the optimal scaling forgives a factor
    assert scaled(ins(5.0 * exact)).max() < 1e-10


def test_same_seed_same_patches_and_bad_settings_fail():
    model, x = _model(), torch.rand(2, 2, 8, 8, dtype=torch.float64)
    target, phi = torch.tensor([0, 1]), torch.randn(2, 2, 8, 8, dtype=torch.float64)
    ins = MetricInputs(h_clean=phi, x=x, model=model, target=target, extra={"attribution": phi})
    assert torch.equal(Infidelity(seed=3, n_perturb=5)(ins), Infidelity(seed=3, n_perturb=5)(ins))
    with pytest.raises(RobexError, match="n_perturb"):
        Infidelity(n_perturb=1)
    with pytest.raises(RobexError, match="baseline"):
        Infidelity(baseline="blur")
    bad = MetricInputs(h_clean=phi[:, :1], x=x, model=model, target=target, extra={"attribution": phi[:, :1]})
    with pytest.raises(RobexError, match="raw attribution"):
        Infidelity(n_perturb=3)(bad)


def test_the_evaluate_task_hands_infidelity_the_raw_attribution(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    import pandas as pd

    root = Path(__file__).resolve().parents[1]
    r = subprocess.run([sys.executable, "run.py", "dataset=digits", "model=vgg_small", "model.image_size=8",
                        "explainer=gradient", "+metric@task.metrics.infidelity=infidelity", "task.metrics.infidelity.square=2",
                        "debug=tiny", f"hydra.run.dir={tmp_path}/run", f"paths.cache_dir={tmp_path}/cache"],
                       cwd=root, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    row = pd.read_csv(tmp_path / "run" / "metrics.csv").set_index("metric").loc["infidelity"]
    assert row["n"] == 16 and row["value"] > 0 and "square=2" in row["metric_params"]
    assert not bool(row["higher_is_better"])
