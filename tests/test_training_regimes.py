"""PGD (robex/attacks/pgd.py) and the training regimes built on it (robex/trainers/losses.py,
robex/defenses/regime.py): PGD stays in its ball and beats a random start, PGD adversarial training
raises PGD robust accuracy over standard training, CURE lowers the curvature it penalises."""
import pytest
import torch
from torch import nn

from robex.attacks.pgd import PGDAttack, pgd
from robex.defenses.regime import TrainingRegime
from robex.errors import RobexError
from robex.models.normalize import Normalize
from robex.models.training import accuracy
from robex.models.vgg import vgg_small
from robex.threats import Threat
from robex.trainers.fit import fit
from robex.trainers.losses import CrossEntropy, CurvatureRegularised, PGDAdversarial
from robex.trainers.optim import OptimiserSpec

EPS = Threat(kind="additive", norm="linf", budget=0.15, units="pixel")


def _fresh():
    torch.manual_seed(0)
    return vgg_small(image_size=8, widths=(8, 8), hidden=32)


def _train(model, loss, digits, epochs=12):
    fit(model, loss, digits.train_x, digits.train_y, epochs=epochs, batch_size=32,
        optimiser=OptimiserSpec(lr=3e-3), generator=torch.Generator().manual_seed(0), show_progress=False)
    return model.eval()


def _robust_accuracy(model, digits):
    x, y = digits.test_x, digits.test_y
    x_adv = pgd(model, x, y, EPS, steps=10, step_size=0.04, generator=torch.Generator().manual_seed(1))
    return accuracy(model, x_adv, y)


def test_pgd_stays_in_its_ball_and_hurts_more_than_noise(relu_digits_model, digits):
    model, x, y = relu_digits_model, digits.test_x[:100], digits.test_y[:100]
    x_adv = pgd(model, x, y, EPS, steps=10, step_size=0.04, generator=torch.Generator().manual_seed(0))
    assert (x_adv - x).abs().max() <= 0.15 + 1e-6 and x_adv.min() >= 0 and x_adv.max() <= 1
    noise = (x + (torch.rand(x.shape, generator=torch.Generator().manual_seed(0)) * 2 - 1) * 0.15).clamp(0, 1)
    assert accuracy(model, x_adv, y) < accuracy(model, noise, y) - 0.3
    res = PGDAttack(EPS, steps=10, step_size=0.04)(model, None, x, y)
    with torch.no_grad():
        same = model(res.x_adv).argmax(1) == model(x).argmax(1)
    assert torch.equal(res.facts["label_kept"], same) and same.float().mean() < 0.7
    assert res.facts["linf"].max() <= 0.15 + 1e-6


def test_pgd_in_normalised_units_scales_the_ball_by_the_std():
    torch.manual_seed(0)
    model = nn.Sequential(Normalize((0.5,), (0.25,)), nn.Flatten(), nn.Linear(16, 3)).eval()
    x, y = torch.rand(6, 1, 4, 4) * 0.5 + 0.25, torch.zeros(6, dtype=torch.long)
    threat = Threat(kind="additive", norm="linf", budget=0.4, units="normalised")  # 0.1 in pixels
    x_adv = pgd(model, x, y, threat, steps=20, step_size=0.1, generator=torch.Generator().manual_seed(0))
    assert (x_adv - x).abs().max() == pytest.approx(0.1, abs=1e-6)


def test_pgd_adversarial_training_raises_pgd_robust_accuracy(digits):
    standard = _train(_fresh(), CrossEntropy(), digits)
    robust = _train(_fresh(), PGDAdversarial(eps=0.15, steps=5, step_size=0.05), digits)
    std_acc, rob_acc = _robust_accuracy(standard, digits), _robust_accuracy(robust, digits)
    assert rob_acc > std_acc + 0.2, (std_acc, rob_acc)
    assert accuracy(robust, digits.test_x, digits.test_y) > 0.6  # still a classifier


def test_cure_lowers_the_curvature_it_penalises(relu_digits_model, digits):
    import copy

    measure = CurvatureRegularised(lam=0.0, h_schedule=[1.0], units="pixel")
    x, y = digits.test_x[:200], digits.test_y[:200]
    before = measure.curvature(relu_digits_model, x, y).mean().item()
    def thawed():
        m = copy.deepcopy(relu_digits_model).train()
        for p in m.parameters():
            p.requires_grad_(True)
        return m

    plain = _train(thawed(), CrossEntropy(), digits, epochs=4)
    cured = _train(thawed(),
                   CurvatureRegularised(lam=4.0, h_schedule=[0.5, 1.0], units="pixel"), digits, epochs=4)
    after_plain = measure.curvature(plain, x, y).mean().item()
    after_cure = measure.curvature(cured, x, y).mean().item()
    assert after_cure < 0.5 * min(before, after_plain), (before, after_plain, after_cure)


def test_cure_follows_its_h_schedule_and_bad_regimes_fail():
    loss = CurvatureRegularised(h_schedule=[0.1, 0.4, 3.0])
    seen = []
    for epoch in range(5):
        loss.start_epoch(epoch)
        seen.append(loss.h)
    assert seen == [0.1, 0.4, 3.0, 3.0, 3.0]
    with pytest.raises(RobexError, match="h_schedule"):
        CurvatureRegularised(h_schedule=[])
    with pytest.raises(RobexError, match="start='scratch'"):
        TrainingRegime(CrossEntropy(), name="x", start="scratch")


def test_pgd_robust_accuracy_is_clean_accuracy_at_zero_budget_and_lower_under_attack(relu_digits_model, digits):
    from robex.metrics.base import MetricInputs
    from robex.metrics.robust_accuracy import PGDRobustAccuracy

    x, y = digits.test_x[:64], digits.test_y[:64]
    with torch.no_grad():
        clean = (relu_digits_model(x).argmax(1) == y).float()
    inputs = MetricInputs(h_clean=None, x=x, model=relu_digits_model, labels=y)
    assert torch.equal(PGDRobustAccuracy(budget=0.0)(inputs), clean)
    robust = PGDRobustAccuracy(budget=0.1, steps=10, step_size=0.02)(inputs)
    assert robust.mean() < clean.mean() - 0.2 and bool((robust <= clean).all())
    with pytest.raises(RobexError, match="true labels"):
        PGDRobustAccuracy()(MetricInputs(h_clean=None, x=x, model=relu_digits_model))
