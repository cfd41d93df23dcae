"""The explainer interface and robex's single heatmap normalisation convention."""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

_TINY = 1e-12


def heatmap(relevance: torch.Tensor) -> torch.Tensor:
    """THE normalisation convention of robex (all explainers, attacks and metrics use it):
    sum |relevance| over channels, then divide by the image's total so each map sums to one.
    (B, C, H, W) -> (B, H, W). For a gradient this is the paper-standard relative importance
    |phi_t| / ||phi||_1."""
    h = relevance.abs().sum(1)
    return h / h.flatten(1).sum(1).clamp_min(_TINY).view(-1, 1, 1)


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
    """Base class. Subclasses implement :meth:`attribute` (signed relevance, x's shape)."""

    def __init__(self, name: str):
        self.name = name

    def attribute(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor,
                  create_graph: bool = False) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Normalised heatmap (B, H, W), detached."""
        return heatmap(self.attribute(model, x, target)).detach()

    def heatmap_with_pullback(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor
                              ) -> tuple[torch.Tensor, torch.Tensor, Callable[[torch.Tensor], torch.Tensor]]:
        """(heatmap, logits, pullback) at x, where pullback(v) = d <v, heatmap(x)> / dx.

        This is what an explanation attack needs each step. The generic version uses double
        backprop; subclasses may provide exact faster routes. ``pullback`` may be called once."""
        x = x.detach().requires_grad_(True)
        with torch.enable_grad():
            h = heatmap(self.attribute(model, x, target, create_graph=True))
        with torch.no_grad():
            logits = model(x)

        def pullback(v: torch.Tensor) -> torch.Tensor:
            (g,) = torch.autograd.grad(h, x, v)
            return g

        return h.detach(), logits, pullback

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"
