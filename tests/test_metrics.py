import numpy as np
import pytest
import scipy.stats
import torch
from skimage.metrics import structural_similarity

from robex.metrics.similarity import (average_ranks, cosine_similarity, mse, pearson, spearman, ssim,
                                      topk_intersection)


def test_spearman_matches_scipy_with_and_without_ties():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(6, 10, 10, generator=g)
    b = a + 0.5 * torch.rand(6, 10, 10, generator=g)
    a[0, :4] = 0.0  # many ties
    b[1] = torch.round(b[1] * 3) / 3  # few distinct values
    ours = spearman(a, b)
    ref = [scipy.stats.spearmanr(a[i].flatten(), b[i].flatten()).statistic for i in range(6)]
    np.testing.assert_allclose(ours.numpy(), ref, atol=1e-6)


def test_average_ranks_hand_case():
    r = average_ranks(torch.tensor([[10.0, 20.0, 20.0, 5.0]]))
    assert r.tolist() == [[2.0, 3.5, 3.5, 1.0]]


def test_spearman_extremes():
    a = torch.arange(50.0).view(1, 50)
    assert spearman(a, a * 2 + 1).item() == pytest.approx(1.0)
    assert spearman(a, -a).item() == pytest.approx(-1.0)


def test_topk_intersection_hand_cases():
    a = torch.tensor([[9.0, 8.0, 7.0, 1.0, 0.0]])
    b = torch.tensor([[9.0, 0.0, 7.0, 8.0, 1.0]])
    # top-3 of a: {0,1,2}; of b: {0,3,2}; overlap 2
    assert topk_intersection(a, b, 3).item() == pytest.approx(2 / 3)
    assert topk_intersection(a, a, 2).item() == 1.0
    assert topk_intersection(a, -a, 2).item() == 0.0


def test_pearson_mse_cosine_match_numpy():
    g = torch.Generator().manual_seed(1)
    a, b = torch.rand(4, 30, generator=g), torch.rand(4, 30, generator=g)
    for i in range(4):
        x, y = a[i].double().numpy(), b[i].double().numpy()
        assert pearson(a, b)[i].item() == pytest.approx(np.corrcoef(x, y)[0, 1], abs=1e-6)
        assert mse(a, b)[i].item() == pytest.approx(np.mean((x - y) ** 2), abs=1e-7)
        assert cosine_similarity(a, b)[i].item() == pytest.approx(x @ y / np.linalg.norm(x) / np.linalg.norm(y), abs=1e-6)


def test_ssim_matches_skimage():
    g = torch.Generator().manual_seed(2)
    a = torch.rand(3, 28, 28, generator=g)
    b = (a + 0.2 * torch.rand(3, 28, 28, generator=g)).clamp(0, 1)
    ours = ssim(a, b)
    for i in range(3):
        ref = structural_similarity(a[i].double().numpy(), b[i].double().numpy(), gaussian_weights=True,
                                    sigma=1.5, use_sample_covariance=False, data_range=1.0)
        assert ours[i].item() == pytest.approx(ref, abs=1e-6)
    assert ssim(a, a).min().item() == pytest.approx(1.0)
