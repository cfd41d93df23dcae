"""The perturbation-model protocol: how an attack parameterises what it changes in an input.

An attack that optimises a perturbation model (the map attack, robex/attacks/targeted_map.py) holds
a list of parameter tensors per batch and never the perturbed image itself:

- ``init(x0)``: the parameters at the identity (``apply(x0, init(x0))`` returns x0);
- ``apply(x0, params)``: the perturbed batch, differentiable in ``params``;
- ``constrain(params, x0)``: the parameters projected onto the model's budget (no gradient);
- ``penalty(params)``: (B,) regulariser added to the attack's loss (zeros when there is none);
- ``lrs``: a learning rate per parameter tensor for the attack's optimiser (``None``: the attack's own);
- ``sample(x0, generator)``: random parameters inside the budget (uniform in each parameter's L_inf
  box, or in the L2 ball), the random control of an attack of this model
  (robex/attacks/random_perturbation.py);
- ``columns()``: what a metrics row records (``threat``, ``budget``, ``units``).

Models: :class:`robex.threats.Threat` (image space: the parameter is the perturbed image, projected
onto a norm ball or the valid range; every ATEX and AGG-Mean attack), :class:`robex.threats.delta.
Delta` (an additive delta, for composites), :class:`robex.threats.flow.Flow` (StAdv's flow field),
:class:`robex.threats.colour.Recolor` (ReColorAdv's colour grid),
:class:`robex.threats.composite.Composite` (several applied in order, one parameter list).
A new perturbation model is one module here implementing these seven members, plus its config
(``conf/perturbation/``).
"""
from __future__ import annotations

import torch


class PerturbationModel:
    lrs: list | None = None

    def init(self, x0: torch.Tensor) -> list[torch.Tensor]:
        raise NotImplementedError

    def apply(self, x0: torch.Tensor, params: list[torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def constrain(self, params: list[torch.Tensor], x0: torch.Tensor) -> list[torch.Tensor]:
        raise NotImplementedError

    def penalty(self, params: list[torch.Tensor]) -> torch.Tensor:
        return torch.zeros(len(params[0]), dtype=params[0].dtype, device=params[0].device)

    def sample(self, x0: torch.Tensor, generator: torch.Generator | None = None) -> list[torch.Tensor]:
        raise NotImplementedError(f"{type(self).__name__} has no random control (sample)")

    def columns(self) -> dict:
        raise NotImplementedError
