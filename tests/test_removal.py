"""Deletion / preservation: the curve equals a pixel-by-pixel loop; a map that ranks the pixels the
model reads first deletes faster (lower AUC) and preserves better than random maps; R = 1 for a
perfect pair and follows the paper's harmonic mean."""
import pytest
import torch
from torch import nn

from robex.errors import RobexError
from robex.metrics.base import MetricInputs
from robex.metrics.removal import PixelRemoval, curve_auc, relevance, removal_curve
from tests.test_relex import RegionModel


def test_the_curve_equals_a_loop_that_removes_one_pixel_at_a_time():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(2 * 4 * 4, 3)).eval()
    x, sal, target = torch.rand(2, 2, 4, 4), torch.rand(2, 4, 4), torch.tensor([1, 2])
    fill = torch.tensor([0.3, 0.7]).view(1, 2, 1, 1)
    curve = removal_curve(model, x, sal, target, "deletion", 1, fill, batch_size=7)
    for i in range(2):
        order = torch.argsort(sal[i].flatten(), descending=True)
        img, want = x[i].clone(), []
        for k in range(17):
            with torch.no_grad():
                want.append(model(img[None]).softmax(1)[0, target[i]])
            if k < 16:
                r, c = divmod(int(order[k]), 4)
                img[:, r, c] = fill.view(2)
        torch.testing.assert_close(curve[i], torch.stack(want))
    assert curve.shape == (2, 17)


def _scores(saliency, order):
    x = torch.full((1, 1, 8, 8), 0.9)
    metric = PixelRemoval(order=order, fill=0.0)
    return metric(MetricInputs(h_clean=saliency, x=x, model=RegionModel().eval(), target=torch.tensor([0]))).item()


def test_the_right_map_deletes_faster_and_preserves_better_than_random_maps():
    right = torch.zeros(1, 8, 8)
    right[0, 2:5, 2:5] = 1.0
    gen = torch.Generator().manual_seed(0)
    randoms = [torch.rand(1, 8, 8, generator=gen) for _ in range(10)]
    d_right, p_right = _scores(right, "deletion"), _scores(right, "preservation")
    d_rand = sum(_scores(r, "deletion") for r in randoms) / 10
    p_rand = sum(_scores(r, "preservation") for r in randoms) / 10
    assert d_right < d_rand - 0.1 and p_right > p_rand + 0.1, (d_right, d_rand, p_right, p_rand)


def test_relevance_is_the_harmonic_mean_of_preservation_and_one_minus_deletion():
    assert relevance(1.0, 0.0) == 1.0
    assert relevance(0.5, 0.5) == pytest.approx(0.5)
    assert relevance(0.9, 0.3) == pytest.approx(2 / (1 / 0.9 + 1 / 0.7))
    assert relevance(0.0, 0.2) == 0.0
    torch.testing.assert_close(relevance(torch.tensor([1.0, 0.9]), torch.tensor([0.0, 0.3])),
                               torch.tensor([1.0, 2 / (1 / 0.9 + 1 / 0.7)]))
    torch.testing.assert_close(curve_auc(torch.tensor([[1.0, 1.0, 0.0]])), torch.tensor([0.75]))


def test_a_non_finite_map_scores_nan_and_bad_settings_are_errors():
    bad = torch.zeros(1, 8, 8)
    bad[0, 0, 0] = float("nan")
    assert torch.isnan(torch.tensor(_scores(bad, "deletion")))
    with pytest.raises(RobexError, match="order='both'"):
        PixelRemoval(order="both")
    with pytest.raises(RobexError, match="per_step=0"):
        removal_curve(RegionModel(), torch.rand(1, 1, 8, 8), torch.rand(1, 8, 8), torch.tensor([0]), "deletion", 0,
                      torch.zeros(1, 1, 1, 1))


def test_the_relevance_metric_is_the_harmonic_mean_of_its_own_deletion_and_preservation():
    from robex.metrics.removal import Relevance

    sal = torch.rand(1, 8, 8, generator=torch.Generator().manual_seed(3))
    inputs = MetricInputs(h_clean=sal, x=torch.full((1, 1, 8, 8), 0.9), model=RegionModel().eval(),
                          target=torch.tensor([0]))
    d = PixelRemoval("deletion", fill=0.0)(inputs)
    p = PixelRemoval("preservation", fill=0.0)(inputs)
    torch.testing.assert_close(Relevance(fill=0.0)(inputs), relevance(p, d))
    assert 0 < d.item() < 1 and 0 < p.item() < 1
