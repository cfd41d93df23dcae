"""The targeted map attack (Dombrowski et al.) and the blank-square objective, on a small trained
ReLU network: lowers the map MSE to the target, keeps labels, stays in range, works through every
explainer; the AGG-Mean task's transfer and square metrics."""
import numpy as np
import pytest
import torch

from robex.attacks.targeted_map import TargetedMapAttack, blank_square_target, centre_square_mask
from robex.explainers.aggregate import AggMean
from robex.explainers.gradient import Gradient
from robex.explainers.guided_backprop import GuidedBackprop
from robex.explainers.integrated_gradients import IntegratedGradients
from robex.explainers.lrp import LRP
from robex.explainers.noise_tunnel import SmoothGrad
from robex.metrics.attack_success import similarity_deltas


EXPLAINERS = [Gradient, GuidedBackprop, LRP, lambda: IntegratedGradients(steps=5),
              lambda: SmoothGrad(n_samples=4, sigma=0.1),
              lambda: AggMean(members=[LRP(), GuidedBackprop(), Gradient()])]


@pytest.mark.parametrize("make", EXPLAINERS)
def test_map_attack_moves_the_map_to_the_target_and_keeps_labels(make, digits, relu_digits_model):
    model, ex = relu_digits_model, make()
    x, x_t = digits.test_x[:12], digits.test_x[12:24]
    with torch.no_grad():
        cls, cls_t = model(x).argmax(1), model(x_t).argmax(1)
    torch.manual_seed(0)
    h_t = ex(model, x_t, cls_t)
    attack = TargetedMapAttack(iterations=60, lr=5e-3, batch_size=6, show_progress=False)
    torch.manual_seed(0)
    res = attack(model, ex, x, cls, h_target=h_t)
    assert res.x_adv.min() >= 0 and res.x_adv.max() <= 1
    assert res.facts["label_kept"].float().mean() >= 0.9
    before, after = -res.facts["objective_before"], -res.facts["objective_after"]  # map MSE to target
    assert after.mean() < 0.9 * before.mean()
    assert sum(isinstance(m, torch.nn.ReLU) for m in model.modules()) == 5  # ReLUs restored


def test_blank_square_attack_removes_relevance_from_the_square(digits, relu_digits_model):
    model, ex = relu_digits_model, Gradient()
    x = digits.test_x[:10]
    cls = model(x).argmax(1)
    mask = centre_square_mask(8, 8)
    assert mask.sum() == 16  # a quarter of 64 pixels, centred
    res = TargetedMapAttack(target="blank_square", iterations=100, lr=1e-2, show_progress=False)(model, ex, x, cls)
    inside0 = (ex(model, x, cls) * mask).flatten(1).sum(1)
    inside1 = (ex(model, res.x_adv, cls) * mask).flatten(1).sum(1)
    assert inside1.mean() < 0.9 * inside0.mean() and (inside1 < inside0).float().mean() >= 0.7
    t = blank_square_target(ex(model, x, cls), mask)
    torch.testing.assert_close(t.flatten(1).sum(1), torch.ones(10))
    assert (t * mask).abs().max() == 0


def test_attack_is_exact_under_batching(digits, relu_digits_model):
    model, ex = relu_digits_model, Gradient()
    x, x_t = digits.test_x[:8], digits.test_x[8:16]
    cls = model(x).argmax(1)
    h_t = ex(model, x_t, model(x_t).argmax(1))
    a = TargetedMapAttack(iterations=5, lr=1e-2, batch_size=8, show_progress=False)(model, ex, x, cls, h_target=h_t)
    b = TargetedMapAttack(iterations=5, lr=1e-2, batch_size=3, show_progress=False)(model, ex, x, cls, h_target=h_t)
    torch.testing.assert_close(a.x_adv, b.x_adv, rtol=0, atol=1e-4)  # float noise, amplified by Adam on ~0 gradients


def test_similarity_deltas_hand_case():
    t = torch.tensor([[[0.5, 0.5], [0.0, 0.0]]])
    start = torch.tensor([[[0.0, 0.0], [0.5, 0.5]]])
    d = similarity_deltas(t, start, t.clone(), top_fraction=0.5)
    assert d["pcc_delta"].item() == pytest.approx(2.0)  # from -1 to 1
    assert d["topk_delta"].item() == pytest.approx(1.0)  # from 0 to 1
    assert d["mse_delta"].item() == pytest.approx(-0.25)  # from mean(4 x 0.5^2) = 0.25 to 0


def _gallery_job(attacked, evaluators, blank=False, n=4, hw=8):
    rng = np.random.default_rng(0)
    job = {"attacked": np.array(attacked), "x": rng.random((n, 1, hw, hw)), "x_adv": rng.random((n, 1, hw, hw)),
           "x_target": rng.random((n, 1, hw, hw))}
    for m in evaluators:
        for key in ("map_start", "map_adv") + (() if blank else ("map_target",)):
            job[f"{m}__{key}"] = rng.random((n, hw, hw))
    return job


def test_galleries_draw_the_chosen_sample_and_the_blank_square_target(tmp_path):
    """AGG-Mean Figs. 1, 3, 7-10, 15-16: the grid draws the preset's sample of each method's own job,
    its adversarial input when asked, and for blank-square jobs the start map with the square zeroed
    as the target (what the attack aimed at); the transfer grid draws another method's maps of the
    images attacked through the first."""
    from omegaconf import OmegaConf

    from robex.attacks.targeted_map import blank_square_target, centre_square_mask
    from robex.report.aggmean import render_transfer_grid, render_visual_grid

    methods = ["guided_backprop", "agg_mean"]
    arrays = [_gallery_job(m, methods) for m in methods]
    paper = OmegaConf.create({"title": "t", "sample": 2, "adv_inputs": True, "methods": methods + ["lrp"]})
    csv = render_visual_grid(None, paper, tmp_path, arrays)
    gb = csv[(csv["row"] == "guided_backprop") & (csv["panel"] == "map_adv")]["value"].to_numpy()
    assert np.allclose(gb, arrays[0]["guided_backprop__map_adv"][2].ravel())  # sample 2 of its own job
    adv = csv[(csv["row"] == "agg_mean") & (csv["panel"] == "x_adv")]["value"].to_numpy()
    assert np.allclose(adv, arrays[1]["x_adv"][2, 0].ravel())
    assert set(csv["row"]) == {"images", "guided_backprop", "agg_mean"}  # no job for lrp: no row
    assert (tmp_path / "figure.png").stat().st_size > 1000

    blank = [_gallery_job(m, methods, blank=True) for m in methods]
    paper = OmegaConf.create({"title": "t", "sample": 1, "square_fraction": 0.25, "methods": methods})
    csv = render_visual_grid(None, paper, tmp_path, blank)
    target = csv[(csv["row"] == "agg_mean") & (csv["panel"] == "map_target")]["value"].to_numpy().reshape(8, 8)
    start = torch.as_tensor(blank[1]["agg_mean__map_start"][1:2])
    expected = blank_square_target(start, centre_square_mask(8, 8, 0.25)).numpy()[0]
    assert np.allclose(target, expected) and target[3:5, 3:5].max() == 0 and target.sum() == pytest.approx(1.0)
    assert "x_target" not in set(csv["panel"])  # no target image for the blank-square objective

    arrays = [_gallery_job("guided_backprop", ["guided_backprop", "lrp"])]
    paper = OmegaConf.create({"title": "t", "sample": 3, "attacked": "guided_backprop",
                              "evaluated": ["guided_backprop", "lrp"]})
    csv = render_transfer_grid(None, paper, tmp_path, arrays)
    lrp = csv[(csv["row"] == "lrp") & (csv["panel"] == "map_adv")]["value"].to_numpy()
    assert np.allclose(lrp, arrays[0]["lrp__map_adv"][3].ravel())
