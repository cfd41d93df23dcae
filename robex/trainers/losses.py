"""Training losses for :func:`robex.trainers.fit.fit`.

A loss is called once per batch as ``loss(model, x, y, idx, generator)`` after the optimiser's
gradients were zeroed; it back-propagates its own value (so it may split a large batch into
micro-batches) and returns the value as a float. ``idx`` are the batch's indices into the training
split (for per-image state such as ATEX's teacher directions); ``generator`` is the run's seeded
generator (for losses that sample)."""
from __future__ import annotations

import torch
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


class PGDAdversarial:
    """PGD adversarial training (Madry et al. 2018): the cross-entropy of the PGD examples alone,
    each made with the current model in eval mode (as the robustness library does), under an
    additive L_inf threat (``eps`` and ``step_size`` in the threat's ``units``)."""

    def __init__(self, eps: float, steps: int = 7, step_size: float = 2 / 255, units: str = "pixel",
                 random_start: bool = True):
        from robex.threats import Threat

        self.threat = Threat(kind="additive", norm="linf", budget=eps, units=units)
        self.steps, self.step_size, self.random_start = int(steps), float(step_size), bool(random_start)

    def __call__(self, model, x, y, idx, generator) -> float:
        from robex.attacks.pgd import pgd

        model.eval()
        x_adv = pgd(model, x, y, self.threat, self.steps, self.step_size, self.random_start, generator)
        model.train()
        loss = F.cross_entropy(model(x_adv), y)
        loss.backward()
        return loss.item()


class CurvatureRegularised:
    """CURE (Moosavi-Dezfooli et al. 2019) as the authors' code (F-Salehi/CURE_robustness) computes it:
    CE(x) in train mode plus ``lam`` times the batch mean of ||g(x + z) - g(x)||_2, where g is the
    input gradient of the batch-MEAN cross-entropy (so each sample's gradient carries 1/B, as in the
    code) and z = h * sign(g(x)) / ||sign(g(x))||_2 per sample, both taken in eval mode; the
    regulariser is differentiated through (double backprop). ``h`` is in the model's normalised input
    units (the code normalises its inputs; robex's models normalise inside, so z and g are converted
    with the normalisation's std); ``h`` changes per epoch: ``h_schedule`` for the first epochs, its
    last value after (the code's [0.1, 0.4, 0.8, 1.8, 3]). ``last_curvature`` is the last batch's
    regulariser (without ``lam``), the quantity CURE lowers."""

    def __init__(self, lam: float = 4.0, h_schedule=(0.1, 0.4, 0.8, 1.8, 3.0), units: str = "normalised"):
        from robex.errors import RobexError

        self.lam, self.h_schedule = float(lam), [float(h) for h in h_schedule]
        if not self.h_schedule or min(self.h_schedule) <= 0 or self.lam < 0:
            raise RobexError("CURE: h_schedule needs values > 0 and lam >= 0")
        if units not in ("pixel", "normalised"):
            raise RobexError(f"CURE units={units!r}: pixel or normalised")
        self.units, self.h, self.last_curvature = units, self.h_schedule[0], float("nan")

    def start_epoch(self, epoch: int) -> None:
        self.h = self.h_schedule[min(epoch, len(self.h_schedule) - 1)]

    def _scale(self, model):
        from robex.threats import Threat

        return Threat(units=self.units).scale(model)

    def curvature(self, model, x, y) -> torch.Tensor:
        """(B,) ||g(x + z) - g(x)||_2 in normalised units, differentiable w.r.t. the weights."""
        std = self._scale(model)
        was_training = model.training
        model.eval()
        with torch.enable_grad():
            xz = x.detach().requires_grad_(True)
            (g0,) = torch.autograd.grad(F.cross_entropy(model(xz), y), xz)
            sign = g0.sign()
            z = self.h * (sign + 1e-7) / (sign.flatten(1).norm(dim=1).view(-1, *([1] * (x.dim() - 1))) + 1e-7)
            xi = x.detach().requires_grad_(True)
            diff = F.cross_entropy(model(xi + z * std), y) - F.cross_entropy(model(xi), y)
            (gd,) = torch.autograd.grad(diff, xi, create_graph=True)
        model.train(was_training)
        return (gd * std).flatten(1).norm(dim=1)  # d/d(normalised input) = std * d/d(pixel)

    def __call__(self, model, x, y, idx, generator) -> float:
        model.train()
        ce = F.cross_entropy(model(x), y)
        reg = self.curvature(model, x, y)
        loss = ce + self.lam * reg.mean()
        loss.backward()
        self.last_curvature = reg.mean().item()
        return loss.item()
