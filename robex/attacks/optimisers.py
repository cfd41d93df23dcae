"""How an attack moves its perturbation: the optimiser part of attack = objective x threat x
optimiser. Every optimiser ASCENDS the attack's objective (pass the negated gradient of a loss).

Use: ``opt.start(x0, threat)`` once per batch, then each iteration ``x_next = threat.project(
opt.step(x, g, ok), x0)`` where ``g`` is the objective's gradient at ``x`` and ``ok`` (B,) says
whether ``x`` kept its label. The attack decides which iterate it returns (best, last accepted).

- :class:`NormalisedStep`: ``step_size * g / ||g||`` in the threat's norm (``g / max|g|`` under
  L_inf: the ATEX authors' normalisation). A step that changed the label is either retried from
  the last accepted point with the same direction and half the step (``on_label_change: halve``,
  robex's explanation attack), or dropped with the next step taken from the last accepted point
  (``reject``, the random control), or undone for good (``keep``: the sample stays at its last
  accepted point for the rest of the attack; the ATEX authors' code keeps x, and its next step,
  from the same point and the same map, is the same rejected step again).
- :class:`SignStep`: ``step_size * sign(g)`` (PGD, Ghorbani et al.'s top-k attack).
- :class:`AdamStep`: torch's Adam on a perturbation model's parameters (Dombrowski et al.'s map
  attack; StAdv and ReColor steps).
"""
from __future__ import annotations

import torch

from robex.errors import RobexError


def _view(x: torch.Tensor) -> tuple:
    return (-1,) + (1,) * (x.dim() - 1)


class NormalisedStep:
    RULES = ("halve", "reject", "keep")

    def __init__(self, step_size: float = 0.02, on_label_change: str = "halve"):
        if not step_size > 0:
            raise RobexError(f"optimiser step_size={step_size!r}: must be > 0")
        if on_label_change not in self.RULES:
            raise RobexError(f"optimiser on_label_change={on_label_change!r}: choose one of {', '.join(self.RULES)}")
        self.step_size, self.on_label_change = float(step_size), on_label_change

    def start(self, x0: torch.Tensor, threat) -> None:
        self.threat = threat
        self.base, self.direction = x0.clone(), torch.zeros_like(x0)
        self.size = torch.full((len(x0),), self.step_size, dtype=x0.dtype, device=x0.device)

    def step(self, x: torch.Tensor, g: torch.Tensor, ok: torch.Tensor) -> torch.Tensor:
        keep = ok.view(_view(x))
        self.base = torch.where(keep, x, self.base)  # the last point that kept its label
        new = self.threat.unit_direction(g)
        if self.on_label_change == "halve":  # a rejected sample retries its step, halved
            self.direction = torch.where(keep, new, self.direction)
            self.size = torch.where(ok, self.size, self.size * 0.5)
        elif self.on_label_change == "keep":  # a rejected sample stops where it last kept its label
            self.direction = new
            self.size = torch.where(ok, self.size, torch.zeros_like(self.size))
        else:
            self.direction = new
        return self.base + self.size.view(_view(x)) * self.direction

    def last_accepted(self, x: torch.Tensor, ok: torch.Tensor) -> torch.Tensor:
        """x where it kept its label, else the last point that did."""
        return torch.where(ok.view(_view(x)), x, self.base)


class SignStep:
    def __init__(self, step_size: float = 0.01):
        if not step_size > 0:
            raise RobexError(f"optimiser step_size={step_size!r}: must be > 0")
        self.step_size = float(step_size)

    def start(self, x0: torch.Tensor, threat) -> None:
        pass

    def step(self, x: torch.Tensor, g: torch.Tensor, ok: torch.Tensor | None = None) -> torch.Tensor:
        return x + self.step_size * g.sign()


class AdamStep:
    """Adam on a list of parameter tensors (a perturbation model's parameters; the image itself for
    an image-space threat), one learning rate per tensor (``lrs``) or ``lr`` for all."""

    def __init__(self, lr: float = 2e-4):
        if not lr > 0:
            raise RobexError(f"optimiser lr={lr!r}: must be > 0")
        self.lr = float(lr)

    def start(self, params: list[torch.Tensor], lrs: list | None = None) -> None:
        self.leaves = [p.detach().clone().requires_grad_(True) for p in params]
        lrs = [self.lr if lr is None else float(lr) for lr in (lrs or [None] * len(params))]
        self.opt = torch.optim.Adam([{"params": [leaf], "lr": lr} for leaf, lr in zip(self.leaves, lrs)])

    def step(self, params: list[torch.Tensor], grads: list[torch.Tensor]) -> list[torch.Tensor]:
        """Adam is per element, so a batch of samples steps exactly as each would alone."""
        with torch.no_grad():
            for leaf, p, g in zip(self.leaves, params, grads):
                leaf.copy_(p)  # the projected point the attack continued from
                leaf.grad = -g  # Adam descends; the attack ascends its objective
        self.opt.step()
        return [leaf.detach().clone() for leaf in self.leaves]
