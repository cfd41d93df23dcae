"""The targeted map attack (Dombrowski et al.) and the blank-square objective, on a small trained
ReLU network: lowers the map MSE to the target, keeps labels, stays in range, works through every
explainer; the AGG-Mean task's transfer and square metrics."""
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
