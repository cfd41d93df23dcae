"""Every (explainer, attack) pair that a paper preset runs (the explainer the attack optimises: the
job's, or the task's attack_explainer for a transfer attack), built from the preset's own composed
config (debug=tiny applied), attacks a tiny model of the preset's kind (softplus atex_cnn or ReLU
vgg_small on 8x8 digits): the adversarial images stay in [0, 1] and within the budget, keep the
label where the attack promises it, and actually move. The list of pairs comes from the presets,
so a new preset's pair is tested without editing this file."""
import itertools
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from robex.models.normalize import Normalize
from robex.pipeline import apply_debug
from robex.threats.delta import Delta

CONF = Path(__file__).resolve().parents[1] / "conf"
PRESETS = sorted(p.stem for p in (CONF / "paper").glob("*.yaml"))
OPTION_AXES = ("explainer", "attack", "model", "dataset")  # what decides a pair (defense: its model is trained)


def _compose(overrides):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="config", overrides=overrides, return_hydra_config=True)


def _preset_pairs():
    """(model, attacked explainer, attack) -> the first (preset, composed config) that runs it. Only
    the option axes vary jointly; budgets and other values keep their first entry (a pair is the same
    pair at another budget)."""
    pairs = {}
    for preset in PRESETS:
        params = _compose([f"paper={preset}"]).hydra.sweeper.params
        axes = [[f"{k}={v}" for v in str(vals).split(",")] if k.split("@")[0] in OPTION_AXES
                else [f"{k}={str(vals).split(',')[0]}"] for k, vals in params.items()]
        for job in itertools.product(*axes):
            cfg = _compose([f"paper={preset}", *job, "debug=tiny"])
            OmegaConf.set_struct(cfg, False)
            apply_debug(cfg)
            if cfg.attack.name == "none":
                continue
            attacked = cfg.task.get("attack_explainer") or cfg.explainer  # a transfer attack's own explainer
            key = (cfg.model.name, attacked.name, cfg.attack.name)
            pairs.setdefault(key, (preset, cfg))
    return pairs


PAIRS = _preset_pairs()


class _ChannelMean(torch.nn.Module):
    def forward(self, x):
        return x.mean(1, keepdim=True)


def test_the_presets_attack_through_several_explainers_and_attacks():
    assert len({a for _, _, a in PAIRS}) >= 5 and len({e for _, e, _ in PAIRS}) >= 5


@pytest.mark.parametrize("key", sorted(PAIRS), ids=lambda k: "-".join(k))
def test_preset_pair_attacks_a_tiny_model(key, digits, digits_model, relu_digits_model):
    preset, cfg = PAIRS[key]
    model = relu_digits_model if cfg.model.name.startswith(("vgg", "resnet")) else digits_model
    explainer, attack = instantiate(cfg.task.get("attack_explainer") or cfg.explainer), instantiate(cfg.attack)
    if attack.threat.columns()["units"] == "normalised":  # budgets in the units of a model's input normalisation
        model = torch.nn.Sequential(Normalize((0.5,), (0.25,)), model).eval()
    x, x_t = digits.test_x[:6], digits.test_x[6:12]
    if int(cfg.model.get("in_channels", 1)) == 3:  # colour presets (ReColor needs RGB): tinted digits,
        tint = torch.tensor([0.9, 0.6, 0.3]).view(1, 3, 1, 1)  # the grey model reads their channel mean
        x, x_t = x * tint + 0.05, x_t * tint + 0.05
        model = torch.nn.Sequential(_ChannelMean(), model).eval()
    with torch.no_grad():
        cls, cls_t = model(x).argmax(1), model(x_t).argmax(1)
    torch.manual_seed(0)
    if getattr(attack, "target", None) == "other_image":
        res = attack(model, explainer, x, cls, h_target=explainer(model, x_t, cls_t))
    else:
        res = attack(model, explainer, x, cls)
    assert res.x_adv.shape == x.shape and res.x_adv.min() >= 0 and res.x_adv.max() <= 1
    linf = (res.x_adv - x).abs().flatten(1).amax(1)
    torch.testing.assert_close(res.facts["linf"].float(), linf.float())
    assert linf.max() > 0, f"{preset}: {attack.name} on {explainer.name} did not move"
    if isinstance(attack.threat, Delta):
        assert (linf <= attack.threat.budget + 1e-6).all()
    if getattr(attack.threat, "kind", None) == "additive":
        scale = attack.threat.scale(model)
        assert (linf <= attack.threat.budget * float(scale if isinstance(scale, float) else scale.max()) + 1e-6).all()
    if attack.name.startswith(("manip", "random")):
        with torch.no_grad():
            assert torch.equal(model(res.x_adv).argmax(1), cls) and res.facts["label_kept"].all()
