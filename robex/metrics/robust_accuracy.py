"""Does a training regime make the network robust? :class:`PGDRobustAccuracy` is 1 where the model
still predicts the true label under Madry's L_inf PGD (robex/attacks/pgd.py), else 0 (a misclassified
clean image counts as wrong), so its mean is the robust accuracy with its binomial standard error.
The smoothed-explanations regime tables report it beside the clean accuracy, so a reader can see
that adversarial training (and CURE) did what they are for."""
from __future__ import annotations

import torch

from robex.attacks.pgd import pgd
from robex.errors import RobexError
from robex.metrics.base import Metric, MetricInfo
from robex.threats import Threat


class PGDRobustAccuracy(Metric):
    info = MetricInfo(kind="model", higher_is_better=True, range=(0.0, 1.0),
                      citation="Madry et al. 2018, 'Towards deep learning models resistant to adversarial attacks'")

    def __init__(self, budget: float = 8 / 255, steps: int = 10, step_size: float = 2 / 255, seed: int = 0,
                 batch_size: int = 250):
        if int(steps) < 1 or not step_size > 0:
            raise RobexError(f"pgd_robust_accuracy: steps={steps} >= 1 and step_size={step_size} > 0 required")
        self.threat = Threat(kind="additive", norm="linf", budget=budget, units="pixel")
        self.steps, self.step_size, self.seed, self.batch_size = int(steps), float(step_size), int(seed), int(batch_size)

    def params(self) -> dict:
        return {"budget": round(self.threat.budget, 6), "steps": self.steps, "step_size": round(self.step_size, 6)}

    def __call__(self, inputs):
        if inputs.labels is None:
            raise RobexError("pgd_robust_accuracy needs the true labels (the task passes them as labels)")
        model, x, y = inputs.model, inputs.x, inputs.labels
        gen, out = torch.Generator().manual_seed(self.seed), []
        for s in range(0, len(x), self.batch_size):
            xb, yb = x[s:s + self.batch_size], y[s:s + self.batch_size]
            adv = pgd(model, xb, yb, self.threat, self.steps, self.step_size, True, gen)
            with torch.no_grad():
                out.append((model(adv).argmax(1) == yb).float())
        return torch.cat(out)
