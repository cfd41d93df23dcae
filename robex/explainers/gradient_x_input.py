"""Gradient x input (Shrikumar et al. 2016)."""
from __future__ import annotations

from robex.explainers.base import Explainer, input_gradient


class GradientXInput(Explainer):
    """relevance = x * d logit_target / dx."""

    def __init__(self, name: str = "gradient_x_input", normalise=None):
        super().__init__(name, normalise)

    def attribute(self, model, x, target, create_graph=False):
        return x * input_gradient(model, x, target, create_graph)
