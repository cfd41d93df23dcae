"""Vanilla gradient (saliency, Simonyan et al. 2013)."""
from __future__ import annotations

import torch

from robex.errors import RobexError
from robex.explainers import sequential_tape
from robex.explainers.base import Explainer, input_gradient


OUTPUTS = ("logit", "softmax")


class Gradient(Explainer):
    """relevance = d logit_target / dx (``output: logit``), or d softmax_target / dx (``softmax``, the
    RelEx code's SmoothGrad)."""

    def __init__(self, name: str = "gradient", output: str = "logit", normalise=None):
        super().__init__(name, normalise)
        if output not in OUTPUTS:
            raise RobexError(f"{name} output={output!r}: choose one of {', '.join(OUTPUTS)}")
        self.output = output

    def attribute(self, model, x, target, create_graph=False):
        if self.output == "logit":
            return input_gradient(model, x, target, create_graph)
        with torch.enable_grad():
            if not x.requires_grad:
                x = x.detach().requires_grad_(True)
            p = model(x).softmax(1).gather(1, target.view(-1, 1)).sum()
            (grad,) = torch.autograd.grad(p, x, create_graph=create_graph)
        return grad

    def heatmap_with_pullback(self, model, x, target):
        if self.output != "logit" or not sequential_tape.supports(model):
            return super().heatmap_with_pullback(model, x, target)
        phi, logits, pull_phi = sequential_tape.gradient_with_pullback(model, x, target)
        phi = phi.requires_grad_(True)
        with torch.enable_grad():
            h = self.normalise(phi)

        def pullback(v: torch.Tensor) -> torch.Tensor:
            (v_phi,) = torch.autograd.grad(h, phi, v)
            return pull_phi(v_phi)

        return h.detach(), logits, pullback
