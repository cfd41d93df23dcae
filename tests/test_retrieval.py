"""Target-class retrieval keeps the class exactly when the mask covers what the model reads, and
picks the mask and image it is told to; the L1 ratio and the min-max normaliser on hand cases."""
import pytest
import torch

from robex.errors import RobexError
from robex.metrics.base import MetricInputs
from robex.metrics.retrieval import MaskL1Ratio, Retrieval
from robex.normalisers import MinMax
from tests.test_relex import RegionModel


def _inputs(h_clean, h_adv):
    x = torch.full((1, 1, 8, 8), 0.9)
    return MetricInputs(h_clean=h_clean, h_adv=h_adv, x=x, x_adv=x.clone(), model=RegionModel().eval(),
                        target=torch.tensor([0]))


def test_retrieval_follows_the_region_the_model_reads_and_the_side_it_is_given():
    good = torch.zeros(1, 8, 8)
    good[0, 2:5, 2:5] = 1.0
    bad = 1.0 - good
    inputs = _inputs(h_clean=bad, h_adv=good)
    assert Retrieval(mask="adversarial", fill=0.0)(inputs).tolist() == [1.0]
    assert Retrieval(mask="clean", fill=0.0)(inputs).tolist() == [0.0]
    per_channel = good.unsqueeze(1)  # a RelEx-style (B, C, H, W) mask
    assert Retrieval(fill=0.0)(_inputs(bad, per_channel)).tolist() == [1.0]


def test_retrieval_refuses_maps_outside_the_unit_interval_and_unknown_sides():
    with pytest.raises(RobexError, match="masks in \\[0, 1\\]"):
        Retrieval(fill=0.0)(_inputs(torch.zeros(1, 8, 8), torch.full((1, 8, 8), 2.0)))
    with pytest.raises(RobexError, match="mask='both'"):
        Retrieval(mask="both")


def test_mask_l1_ratio_and_min_max():
    h0, h1 = torch.ones(2, 4, 4), torch.ones(2, 4, 4) * 0.25
    h0[1] = 0
    ratio = MaskL1Ratio()(MetricInputs(h_clean=h0, h_adv=h1))
    assert ratio[0].item() == pytest.approx(0.25) and torch.isnan(ratio[1])
    r = torch.tensor([[[[1.0, -3.0], [2.0, 5.0]]]])
    torch.testing.assert_close(MinMax()(r), torch.tensor([[[0.0, 0.5], [0.25, 1.0]]]))
