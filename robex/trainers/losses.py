"""Training losses for :func:`robex.trainers.fit.fit`.

A loss is called once per batch as ``loss(model, x, y, idx, generator)`` after the optimiser's
gradients were zeroed; it back-propagates its own value (so it may split a large batch into
micro-batches) and returns the value as a float. ``idx`` are the batch's indices into the training
split (for per-image state such as ATEX's teacher directions); ``generator`` is the run's seeded
generator (for losses that sample)."""
from __future__ import annotations

import torch.nn.functional as F

from robex.attacks.fgsm import fgsm


class CrossEntropy:
    """Standard training: mean cross-entropy of the batch."""

    def __call__(self, model, x, y, idx, generator) -> float:
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        return loss.item()


class FGSMAdversarial:
    """FGSM adversarial training (Goodfellow et al. 2015, as in ATEX Sec. 4.4): CE(clean) +
    CE(FGSM example of radius ``eps``), the example made with the current model in eval mode."""

    def __init__(self, eps: float):
        self.eps = float(eps)

    def __call__(self, model, x, y, idx, generator) -> float:
        model.eval()
        x_adv = fgsm(model, x, y, self.eps)
        model.train()
        loss = F.cross_entropy(model(x), y) + F.cross_entropy(model(x_adv), y)
        loss.backward()
        return loss.item()



