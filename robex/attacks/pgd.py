"""Projected gradient descent on the prediction (Madry et al. 2018): untargeted, the cross-entropy
of the class to keep is increased by sign steps, projected onto the threat's ball (pixel or
normalised units) and the valid range after every step, from a uniformly random start in the ball.
Used as an attack (``attack=pgd``, RelEx's and the robustness checks') and inside PGD adversarial
training (robex/trainers/losses.py). The last iterate is returned (Madry's convention)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from robex.attacks.base import AttackResult, label_kept, per_sample_max
from robex.errors import RobexError
from robex.threats import Threat


def pgd(model, x: torch.Tensor, y: torch.Tensor, threat: Threat, steps: int, step_size: float,
        random_start: bool = True, generator: torch.Generator | None = None) -> torch.Tensor:
    """The PGD examples of (x, y) under an additive L_inf ``threat``; ``step_size`` is in the
    threat's units. ``model`` is used as it is (put it in eval mode first)."""
    if threat.kind != "additive" or threat.norm != "linf":
        raise RobexError(f"PGD needs an additive L_inf threat (got kind={threat.kind} norm={threat.norm})")
    scale = threat.scale(model)
    x0 = x.detach()
    if random_start:
        u = torch.rand(x0.shape, generator=generator, device="cpu").to(x0.device) * 2 - 1
        x_adv = threat.project(x0 + u * threat.budget * scale, x0, scale)
    else:
        x_adv = x0.clone()
    for _ in range(int(steps)):
        with torch.enable_grad():
            xa = x_adv.detach().requires_grad_(True)
            loss = F.cross_entropy(model(xa), y, reduction="sum")
            (g,) = torch.autograd.grad(loss, xa)
        x_adv = threat.project(x_adv + step_size * scale * g.sign(), x0, scale)  # a sign step, then project
    return x_adv.detach()


class PGDAttack:
    """``attack=pgd``: PGD on the prediction of the explained class (the task's target), the job's
    threat; the explainer is unused. Facts: label_kept (False = the attack succeeded), linf."""

    on_explanation = False

    def __init__(self, threat, name: str = "pgd", steps: int = 40, step_size: float = 0.01,
                 random_start: bool = True, batch_size: int = 200, seed: int = 0):
        self.name = name
        self.threat = Threat.from_config(threat)
        if steps < 1 or not step_size > 0:
            raise RobexError(f"attack {name}: steps >= 1 and step_size > 0 required")
        self.steps, self.step_size, self.random_start = int(steps), float(step_size), bool(random_start)
        self.batch_size, self.seed = int(batch_size), int(seed)

    def __call__(self, model, explainer, x, target) -> AttackResult:
        model.eval()
        gen = torch.Generator().manual_seed(self.seed)
        out = torch.cat([pgd(model, x[s:s + self.batch_size], target[s:s + self.batch_size], self.threat,
                             self.steps, self.step_size, self.random_start, gen)
                         for s in range(0, len(x), self.batch_size)])
        nan = torch.full((len(x),), float("nan"))
        return AttackResult(out, {"label_kept": label_kept(model, x, out, self.batch_size),
                                  "linf": per_sample_max(out - x).cpu(), "objective_before": nan,
                                  "objective_after": nan.clone()})
