"""The explainer interface: raw attributions, a configurable normalisation step, capabilities."""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from robex.normalisers import DEFAULT, Normaliser


def input_gradient(model: nn.Module, x: torch.Tensor, target: torch.Tensor,
                   create_graph: bool = False) -> torch.Tensor:
    """d logit_target / dx for each sample (signed, x's shape). With ``create_graph`` the result is
    differentiable w.r.t. x (double backprop)."""
    with torch.enable_grad():
        if not x.requires_grad:
            x = x.detach().requires_grad_(True)
        out = model(x)
        selected = out.gather(1, target.view(-1, 1)).sum()
        (grad,) = torch.autograd.grad(selected, x, create_graph=create_graph)
    return grad


class Explainer:
    """Base class. Subclasses implement :meth:`attribute`: the raw, signed relevance (x's shape).

    Calling the explainer gives ``normalise(attribute(...))``; ``normalise`` is a
    :class:`robex.normalisers.Normaliser` chosen in the explainer's config (default: |R| summed
    over channels, scaled to sum to one). Capabilities, read by attacks and tasks:
    ``differentiable`` (attribute supports create_graph, so attacks can back-propagate through it)
    and ``stochastic`` (the map depends on random draws; such explainers take a ``seed``).
    ``version`` is the code version in every cache key that names the explainer
    (:func:`robex.cache.with_versions`): bump it when a change alters the maps or their gradients."""

    differentiable = True
    stochastic = False
    version = 1

    def __init__(self, name: str, normalise: Normaliser | None = None):
        self.name = name
        self.normalise = DEFAULT if normalise is None else normalise

    def attribute(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor,
                  create_graph: bool = False) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The normalised map (B, H, W for the default normaliser), detached."""
        return self.normalise(self.attribute(model, x, target)).detach()

    def heatmap_with_pullback(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor
                              ) -> tuple[torch.Tensor, torch.Tensor, Callable[[torch.Tensor], torch.Tensor]]:
        """(map, logits, pullback) at x, where pullback(v) = d <v, map(x)> / dx.

        This is what an explanation attack needs each step. The generic version uses double
        backprop; subclasses may provide exact faster routes. ``pullback`` may be called once."""
        x = x.detach().requires_grad_(True)
        with torch.enable_grad():
            h = self.normalise(self.attribute(model, x, target, create_graph=True))
        with torch.no_grad():
            logits = model(x)

        def pullback(v: torch.Tensor) -> torch.Tensor:
            (g,) = torch.autograd.grad(h, x, v)
            return g

        return h.detach(), logits, pullback

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"
