"""beta-smoothing (Dombrowski et al. 2019, as the smoothed-explanations paper uses it): the gradient
of the network with every ReLU replaced by softplus(beta), beta = 0.8 in the paper.

The smoothed network shares the model's parameters (robex/models/transforms.py::beta_smoothed), so
nothing is copied per call and the model is never changed. Inside an explanation attack the model
passed in is the attack's softplus surrogate; beta-smoothing sets every activation to its own beta,
so the network attacked is the beta-smoothed network itself (the paper's setting), never the
surrogate's. The metric ``smoothed_top1_agreement`` (robex/metrics/agreement.py) says how often the
smoothed network predicts what the model predicts (beta = 0.8 depends on the scale of the
activations: smoothed_tab2 reports it beside the maps).
"""
from __future__ import annotations

import torch

from robex.errors import RobexError
from robex.explainers.base import Explainer, input_gradient
from robex.models.transforms import beta_smoothed


class BetaSmoothing(Explainer):
    version = 1

    def __init__(self, name: str = "beta_smoothing", beta: float = 0.8, normalise=None):
        super().__init__(name, normalise)
        if not beta > 0:
            raise RobexError(f"explainer {name}: beta={beta!r} must be > 0")
        self.beta = float(beta)

    def attribute(self, model, x, target, create_graph=False):
        return input_gradient(beta_smoothed(model, self.beta), x, target, create_graph)

