"""MASK (Fong & Vedaldi): the blur equals scipy's Gaussian filter away from the border; TV on a
hand case; the optimised mask deletes the region the model reads and little else."""
import numpy as np
import pytest
import torch

from robex.errors import RobexError
from robex.explainers.meaningful_perturbation import MeaningfulPerturbation, gaussian_blur, total_variation
from robex.pipeline import freeze
from tests.test_relex import RegionModel


def test_blur_matches_scipy_in_the_interior():
    from scipy.ndimage import gaussian_filter

    x = torch.rand(1, 2, 24, 24, dtype=torch.float64)
    ours = gaussian_blur(x, 1.5)[0, :, 6:-6, 6:-6]
    ref = np.stack([gaussian_filter(x[0, c].numpy(), 1.5, truncate=3.0) for c in range(2)])[:, 6:-6, 6:-6]
    np.testing.assert_allclose(ours.numpy(), ref, atol=1e-3)  # scipy's radius is round, ours ceil


def test_total_variation_on_a_step():
    m = torch.zeros(1, 1, 3, 3)
    m[..., 1:] = 1.0
    assert total_variation(m, 3.0).item() == pytest.approx(3.0)


def test_the_mask_deletes_the_region_the_model_reads():
    class Bright(RegionModel):  # class 0 needs rows/cols 2..5 bright; blur alone does not remove them
        def forward(self, x):
            region = x[:, :, 2:6, 2:6].flatten(1).sum(1)
            return torch.stack([region - 10.0, torch.zeros_like(region)], 1)

    x = torch.zeros(2, 1, 16, 16)
    x[:, :, 2:6, 2:6] = 1.0
    sal = MeaningfulPerturbation(iterations=100, mask_scale=2, blur_sigma=30.0, lambda1=1e-3, lambda2=1e-3) \
        .attribute(freeze(Bright()), x, torch.tensor([0, 0]))
    inside = torch.zeros(16, 16, dtype=torch.bool)
    inside[2:6, 2:6] = True
    assert sal.min() >= 0 and sal.max() <= 1
    assert (sal[:, 0][:, inside].mean(1) > 3 * sal[:, 0][:, ~inside].mean(1)).all()


def test_bad_settings_are_errors():
    with pytest.raises(RobexError, match="iterations=0"):
        MeaningfulPerturbation(iterations=0)
