"""The random control of a perturbation-model attack: the same perturbation model (robex/threats), its
parameters drawn at random inside their budgets (``sample``) instead of optimised, so a figure can
show how much of an attack's effect a perturbation of that size has without any optimisation.

It takes the attack's target maps like the attack (``target: other_image``) so the evaluation can
score the control's map against the same targets, but ignores them. Draws come from its own
generator seeded with ``seed`` (the job's seed), so a control is repeatable. Facts as every attack:
``label_kept`` (the model's prediction unchanged, the one label rule), ``linf`` (max |x' - x|) and
NaN objectives (a control optimises nothing).
"""
from __future__ import annotations

import torch

from robex.attacks.base import AttackResult, label_kept, per_sample_max
from robex.errors import RobexError
from robex.threats.base import PerturbationModel


class RandomPerturbation:
    on_explanation = False  # optimises against nothing: rows leave attacked_explainer empty

    def __init__(self, perturbation: PerturbationModel, name: str = "random_perturbation",
                 target: str = "other_image", seed: int = 0):
        if not isinstance(perturbation, PerturbationModel):
            raise RobexError(f"attack {name}: perturbation must be a perturbation model (robex/threats), "
                             f"got {type(perturbation).__name__}")
        self.name, self.target, self.seed = name, target, int(seed)
        self.threat = perturbation

    def __call__(self, model, explainer, x, target, h_target=None) -> AttackResult:
        gen = torch.Generator(device=x.device).manual_seed(self.seed)
        with torch.no_grad():
            params = self.threat.constrain(self.threat.sample(x, gen), x)
            x_adv = self.threat.apply(x, params)
        nan = torch.full((len(x),), float("nan"))
        return AttackResult(x_adv, {"label_kept": label_kept(model, x, x_adv), "linf": per_sample_max(x_adv - x).cpu(),
                                    "objective_before": nan, "objective_after": nan.clone()})
