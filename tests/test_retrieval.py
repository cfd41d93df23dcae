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


class ThreeRegions(torch.nn.Module):
    """Class c's logit is 5 x the mean of columns 3c..3c+2 of a 1 x 9 x 9 image."""

    def forward(self, x):
        return torch.stack([5 * x[:, 0, :, 3 * c:3 * c + 3].mean((1, 2)) for c in range(3)], 1)


class RegionMask:
    """A stub explainer: the map of class c covers exactly class c's columns (or everything else)."""

    def __init__(self, invert: bool = False):
        self.invert, self.name = invert, "region_mask"

    def __call__(self, model, x, target):
        m = torch.zeros(len(x), 9, 9)
        for i, c in enumerate(target.tolist()):
            m[i, :, 3 * c:3 * c + 3] = 1.0
        return 1 - m if self.invert else m


@pytest.mark.parametrize("invert,low,high", [(False, 0.98, 1.0), (True, 0.0, 0.01)])
def test_class_conditional_task_masks_each_class_with_its_own_map(invert, low, high):
    from types import SimpleNamespace

    from omegaconf import OmegaConf

    from robex.models.normalize import Normalize
    from robex.tasks.class_conditional import ClassConditionalTask

    model = torch.nn.Sequential(Normalize((0.0,), (1.0,)), ThreeRegions()).eval()  # fill colour 0
    x = torch.ones(4, 1, 9, 9)
    ctx = SimpleNamespace(
        cfg=OmegaConf.create({"n_eval": 2, "explainer": {"_target_": "tests.test_retrieval.RegionMask",
                                                         "invert": invert}}),
        device="cpu", defended_model=lambda: model, attack=lambda: (lambda m, e, xs, t: SimpleNamespace(x_adv=xs)),
        attack_result=lambda attack, fooled, fooled_cfg, m, xs, t, **kw: attack(m, fooled, xs, t),
        data=lambda: SimpleNamespace(test_x=x, test_y=torch.tensor([0, 1, 1, 1]), name="toy"),
        row=lambda metric, value, se=None, n=None, **cols: {"metric": metric, "value": value, "n": n, **cols})
    rows = ClassConditionalTask(image_class=1)(ctx)
    assert [r["step"] for r in rows] == [0, 1, 2] * 2 and all(r["n"] == 2 for r in rows)
    assert all(low <= r["value"] <= high for r in rows), rows
    with pytest.raises(RobexError, match="fewer than n_eval"):
        ClassConditionalTask(image_class=0)(ctx)


def test_pair_metrics_compare_per_channel_masks_per_pixel_and_take_k_as_a_fraction():
    from robex.metrics.similarity import Spearman, TopKIntersection

    gen = torch.Generator().manual_seed(0)
    a, b = torch.rand(3, 3, 8, 8, generator=gen), torch.rand(3, 3, 8, 8, generator=gen)
    pix = MetricInputs(h_clean=a.mean(1), h_adv=b.mean(1))
    chan = MetricInputs(h_clean=a, h_adv=b)
    torch.testing.assert_close(Spearman()(chan), Spearman()(pix))
    frac, k16 = TopKIntersection(k=None, fraction=0.25), TopKIntersection(k=16)
    torch.testing.assert_close(frac(chan), k16(pix))
    assert frac.params() == {"fraction": 0.25} and k16.params() == {"k": 16}
    with pytest.raises(RobexError, match="not both"):
        TopKIntersection(k=5, fraction=0.1)
