"""The class-sensitivity (pointing) share (robex/metrics/localisation.py): the top-k pixels of a map
inside an object's mask."""
import pytest
import torch

from robex.errors import RobexError
from robex.metrics.base import MetricInputs
from robex.metrics.localisation import TopKInMask, top_k_share_in_mask


def test_the_share_is_one_inside_zero_outside_and_counts_exactly_in_between():
    mask = torch.zeros(3, 8, 8, dtype=torch.bool)
    mask[:, 2:6, 2:6] = True
    inside = torch.rand(3, 8, 8) * 0.1
    inside[mask] += 1.0                      # every large value on the object
    outside = torch.rand(3, 8, 8) * 0.1
    outside[~mask] += 1.0
    assert top_k_share_in_mask(inside, mask, 16).tolist() == [1.0] * 3
    assert top_k_share_in_mask(outside, mask, 16).tolist() == [0.0] * 3
    h = torch.zeros(1, 8, 8)
    h[0, 2, 2], h[0, 2, 3], h[0, 0, 0], h[0, 7, 7] = 4.0, -3.0, 2.0, 1.0  # |h|: 2 of the top 4 inside
    assert top_k_share_in_mask(h, mask[:1], 4).item() == 0.5
    assert top_k_share_in_mask(h, mask[:1], 2).item() == 1.0  # sign does not matter: |h|


def test_the_metric_reads_the_mask_and_refuses_to_guess():
    mask = torch.zeros(2, 8, 8, dtype=torch.bool)
    mask[:, :, :4] = True
    h = torch.zeros(2, 8, 8)
    h[:, :, :4] = 1.0
    h[1, 0, 0] = float("nan")
    values = TopKInMask(k=20)(MetricInputs(h_clean=h, extra={"mask": mask}))
    assert values[0].item() == 1.0 and torch.isnan(values[1])  # a non-finite map never scores
    with pytest.raises(RobexError, match="needs the object masks"):
        TopKInMask()(MetricInputs(h_clean=h))
    with pytest.raises(RobexError, match="k=65"):
        top_k_share_in_mask(h, mask, 65)
    with pytest.raises(RobexError, match="differ in shape"):
        top_k_share_in_mask(h, mask[:, :4], 2)
