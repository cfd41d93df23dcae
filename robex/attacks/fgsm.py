"""FGSM (Goodfellow et al. 2015): one signed-gradient step on the classification loss."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from robex.attacks.base import AttackResult, label_kept, per_sample_max
from robex.errors import RobexError
from robex.threats import Threat


def fgsm(model, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
    """x + eps * sign(d CE(model(x), y) / dx), clamped to [0, 1]."""
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        loss = F.cross_entropy(model(x), y, reduction="sum")
        (g,) = torch.autograd.grad(loss, x)
    return (x.detach() + eps * g.sign()).clamp_(0.0, 1.0)


class FGSM:
    """White-box FGSM on the prediction (true labels), one step of the threat's budget: an
    additive L_inf threat in pixel units. Attack interface: the explainer is unused."""

    on_explanation = False

    def __init__(self, threat, name: str = "fgsm", batch_size: int = 200):
        self.name = name
        self.threat = Threat.from_config(threat)
        if (self.threat.kind, self.threat.norm, self.threat.units) != ("additive", "linf", "pixel"):
            raise RobexError(f"attack {name} supports threat kind=additive norm=linf units=pixel only "
                             f"(got {self.threat})")
        self.eps = self.threat.budget
        self.batch_size = int(batch_size)

    def __call__(self, model, explainer, x, target) -> AttackResult:
        model.eval()
        out = torch.cat([fgsm(model, x[s:s + self.batch_size], target[s:s + self.batch_size], self.eps)
                         for s in range(0, len(x), self.batch_size)])
        kept = label_kept(model, x, out, self.batch_size)
        nan = torch.full((len(x),), float("nan"))
        return AttackResult(out, {"label_kept": kept, "linf": per_sample_max(out - x).cpu(),
                                  "objective_before": nan, "objective_after": nan.clone()})
