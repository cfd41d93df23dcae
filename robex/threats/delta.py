"""An additive perturbation x' = clamp(x + delta, 0, 1), delta in an L_inf or L2 ball, kept as its
own parameter: the Delta part of a composite (colour -> flow -> delta). Alone, an additive threat
is :class:`robex.threats.Threat`, which optimises the image itself (the same set of images)."""
from __future__ import annotations

import torch

from robex.errors import RobexError
from robex.threats.base import PerturbationModel


class Delta(PerturbationModel):
    name = "delta"

    def __init__(self, budget: float = 8 / 255, norm: str = "linf", lr: float | None = None):
        if norm not in ("linf", "l2"):
            raise RobexError(f"delta norm={norm!r}: choose linf or l2")
        if not budget >= 0 or (norm == "linf" and budget > 1):
            raise RobexError(f"delta budget={budget!r} is out of range: [0, 1] for linf, >= 0 for l2")
        if lr is not None and not lr > 0:
            raise RobexError(f"delta lr={lr!r}: must be > 0")
        self.budget, self.norm = float(budget), norm
        self.lrs = None if lr is None else [float(lr)]

    def init(self, x0):
        return [torch.zeros_like(x0)]

    def apply(self, x0, params):
        return (x0 + params[0]).clamp(0.0, 1.0)

    def constrain(self, params, x0):
        (d,) = params
        if self.norm == "linf":
            d = d.clamp(-self.budget, self.budget)
        else:
            size = d.flatten(1).norm(dim=1).clamp_min(1e-30)
            d = d * (self.budget / size).clamp(max=1.0).view(-1, *([1] * (d.dim() - 1)))
        return [d]

    def sample(self, x0, generator=None):
        """Uniform in the L_inf box; for L2 a uniformly random direction at a radius drawn uniformly in
        the ball's volume."""
        like = dict(generator=generator, dtype=x0.dtype, device=x0.device)
        if self.norm == "linf":
            return [self.budget * (torch.rand(x0.shape, **like) * 2 - 1)]
        d = torch.randn(x0.shape, **like)
        d = d / d.flatten(1).norm(dim=1).clamp_min(1e-30).view(-1, *([1] * (x0.dim() - 1)))
        r = torch.rand(len(x0), **like) ** (1.0 / x0[0].numel())
        return [d * (self.budget * r).view(-1, *([1] * (x0.dim() - 1)))]

    def columns(self):
        return {"threat": self.norm, "budget": self.budget, "units": "pixel"}
