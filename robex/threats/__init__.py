"""Threat models: what an attack may change in an input, and by how much.

A :class:`Threat` is the ``threat`` node of the job's config (``conf/config.yaml``), read by every
attack that has a budget and recorded in every row of ``metrics.csv`` (columns ``threat``,
``budget``, ``units``):

- ``kind``: ``additive`` (x' = x + delta, delta inside a norm ball, x' in the valid range [0, 1]),
  ``unconstrained`` (only the valid range; the map attacks of AGG-Mean / Dombrowski et al.) or
  ``none`` (clean evaluation);
- ``norm``: ``linf`` or ``l2`` (the ball of an additive threat);
- ``budget``: the ball's radius;
- ``units``: ``pixel`` (images in [0, 1]) or ``normalised`` (units of the model's input
  normalisation: delta / std lies in the ball, RelEx's convention; needs a model whose first layer
  is :class:`robex.models.normalize.Normalize`).

A defense's own magnitude (ATEX's Delta, FGSM adversarial training's eps) is the defense's own
parameter, never the threat's; it is recorded in the ``defense_budget`` column.

A Threat is also a perturbation model (robex/threats/base.py: the protocol the map attack
optimises), whose parameter is the perturbed image itself. The other models are modules beside
this one: ``delta.py`` (an additive delta as a separate parameter), ``flow.py`` (StAdv),
``composite.py`` (several in order).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from robex.errors import RobexError
from robex.threats.base import PerturbationModel

KINDS = ("additive", "unconstrained", "none")
NORMS = ("linf", "l2")
UNITS = ("pixel", "normalised")


@dataclass(frozen=True)
class Threat(PerturbationModel):
    kind: str = "additive"
    norm: str = "linf"
    budget: float = 0.08
    units: str = "pixel"

    def __post_init__(self):
        if self.kind not in KINDS:
            raise RobexError(f"threat.kind={self.kind!r}: choose one of {', '.join(KINDS)}")
        if self.norm not in NORMS:
            raise RobexError(f"threat.norm={self.norm!r}: choose one of {', '.join(NORMS)}")
        if self.units not in UNITS:
            raise RobexError(f"threat.units={self.units!r}: choose one of {', '.join(UNITS)}")
        try:
            budget = float(self.budget)
        except (TypeError, ValueError):
            raise RobexError(f"threat.budget={self.budget!r} is not a number") from None
        if self.kind == "additive":
            high = 1.0 if (self.norm, self.units) == ("linf", "pixel") else math.inf
            if not (0.0 <= budget <= high):
                allowed = "[0, 1] (an L_inf ball in [0, 1] pixel units)" if high == 1.0 else "[0, inf)"
                raise RobexError(f"threat.budget={self.budget!r} is out of range: it must lie in {allowed}")
        object.__setattr__(self, "budget", budget)

    @property
    def name(self) -> str:
        return self.norm if self.kind == "additive" else self.kind

    @classmethod
    def from_config(cls, node) -> "Threat":
        """From the config node (a DictConfig or dict with kind / norm / budget / units)."""
        if isinstance(node, Threat):
            return node
        d = dict(node or {})
        unknown = sorted(set(d) - {"kind", "norm", "budget", "units"})
        if unknown:
            raise RobexError(f"threat has unknown keys {unknown} (known: kind, norm, budget, units)")
        return cls(**d)

    # -- what a row records ------------------------------------------------------------------
    def columns(self) -> dict:
        """The row columns: ``threat`` (the norm of an additive threat, else the kind), ``budget``
        (NaN without a ball), ``units``."""
        if self.kind == "additive":
            return {"threat": self.norm, "budget": self.budget, "units": self.units}
        return {"threat": self.kind, "budget": float("nan"), "units": ""}

    # -- geometry ----------------------------------------------------------------------------
    def scale(self, model) -> torch.Tensor | float:
        """Pixel size of one budget unit: 1 for pixel units, the per-channel std (1, C, 1, 1) of the
        model's input normalisation for normalised units."""
        if self.units == "pixel":
            return 1.0
        from robex.models.normalize import Normalize

        for m in model.modules():
            if isinstance(m, Normalize):
                return m.std
        raise RobexError("threat.units=normalised needs a model with an input normalisation layer "
                         "(robex.models.normalize.Normalize); this model has none: use units=pixel")

    def project(self, x: torch.Tensor, x0: torch.Tensor, scale: torch.Tensor | float = 1.0) -> torch.Tensor:
        """Project x onto the threat's ball around x0, then onto the valid range [0, 1]."""
        if self.kind == "none":
            return x0.clone()
        if self.kind == "unconstrained":
            return x.clamp(0.0, 1.0)
        if self.norm == "linf":
            r = self.budget * scale
            return torch.minimum(torch.maximum(x, x0 - r), x0 + r).clamp_(0.0, 1.0)
        d = (x - x0) / scale
        size = d.flatten(1).norm(dim=1).clamp_min(1e-30)
        factor = (self.budget / size).clamp(max=1.0).view(-1, *([1] * (x.dim() - 1)))
        return (x0 + d * factor * scale).clamp_(0.0, 1.0)

    # -- the perturbation-model protocol (robex/threats/base.py), in pixel units ----------------
    def init(self, x0: torch.Tensor) -> list[torch.Tensor]:
        return [x0.detach().clone()]

    def apply(self, x0: torch.Tensor, params: list[torch.Tensor]) -> torch.Tensor:
        return params[0]

    def constrain(self, params: list[torch.Tensor], x0: torch.Tensor) -> list[torch.Tensor]:
        return [self.project(params[0], x0)]

    def size(self, delta: torch.Tensor, scale: torch.Tensor | float = 1.0) -> torch.Tensor:
        """(B,) size of each perturbation in the threat's norm and units."""
        d = (delta / scale).detach().flatten(1)
        return d.abs().amax(1) if self.norm == "linf" else d.norm(dim=1)

    def unit_direction(self, g: torch.Tensor) -> torch.Tensor:
        """Scale each sample of g to unit size in the threat's norm (the step direction of the
        step attacks: g / max|g| for L_inf, the authors' normalisation; g / ||g||_2 for L2)."""
        flat = g.flatten(1)
        size = flat.abs().amax(1) if self.norm == "linf" else flat.norm(dim=1)
        return g / size.clamp_min(1e-30).view(-1, *([1] * (g.dim() - 1)))


NONE = Threat(kind="none")
UNCONSTRAINED = Threat(kind="unconstrained")
