import torch

from robex.attacks.fgsm import FGSM
from robex.defenses.adversarial_training import FGSMAdversarialTraining
from robex.models.training import accuracy
from robex.pipeline import freeze
from robex.threats import Threat


def test_fgsm_stays_in_budget_and_range_and_lowers_accuracy(digits, digits_model):
    x, y = digits.test_x, digits.test_y
    res = FGSM(threat=Threat(budget=0.1))(digits_model, None, x, y)
    assert ((res.x_adv - x).abs().flatten(1).amax(1) <= 0.1 + 1e-6).all()
    assert res.x_adv.min() >= 0 and res.x_adv.max() <= 1
    clean = accuracy(digits_model, x, y)
    attacked = (digits_model(res.x_adv).argmax(1) == y).float().mean().item()
    assert attacked < clean - 0.1


def test_fgsm_adversarial_training_raises_robust_accuracy(digits, digits_model):
    import copy

    x, y = digits.test_x, digits.test_y
    model = copy.deepcopy(digits_model)
    for p in model.parameters():
        p.requires_grad_(True)
    before = (digits_model(FGSM(threat=Threat(budget=0.1))(digits_model, None, x, y).x_adv).argmax(1) == y).float().mean()
    FGSMAdversarialTraining(eps=0.1, epochs=3, optimiser={"lr": 3e-3}, batch_size=32, show_progress=False).apply_stage(
        1, None, model, digits)
    freeze(model)
    after = (model(FGSM(threat=Threat(budget=0.1))(model, None, x, y).x_adv).argmax(1) == y).float().mean()
    assert after > before + 0.05
