"""Vanilla gradient (saliency, Simonyan et al. 2013)."""
from __future__ import annotations

import torch

from robex.explainers import sequential_tape
from robex.explainers.base import Explainer, input_gradient


class Gradient(Explainer):
    """relevance = d logit_target / dx."""

    def __init__(self, name: str = "gradient", normalise=None):
        super().__init__(name, normalise)

    def attribute(self, model, x, target, create_graph=False):
        return input_gradient(model, x, target, create_graph)

    def heatmap_with_pullback(self, model, x, target):
        if not sequential_tape.supports(model):
            return super().heatmap_with_pullback(model, x, target)
        phi, logits, pull_phi = sequential_tape.gradient_with_pullback(model, x, target)
        phi = phi.requires_grad_(True)
        with torch.enable_grad():
            h = self.normalise(phi)

        def pullback(v: torch.Tensor) -> torch.Tensor:
            (v_phi,) = torch.autograd.grad(h, phi, v)
            return pull_phi(v_phi)

        return h.detach(), logits, pullback
