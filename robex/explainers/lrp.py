"""Layer-wise relevance propagation through zennit (a maintained library whose rules support
second-order gradients, which the attacks need).

Rules (Dombrowski et al. 2019's LRP variant): z^B (ZBox) in the first conv/linear layer, bounded
by the valid input range (mapped through the model's Normalize layer if it has one); alpha=1 beta=0
(z+, ZPlus) in every later conv/linear layer; activations and normalisation pass relevance
through; max-pooling routes it to the winner. Relevance starts at the target logit.
"""
from __future__ import annotations

import torch
from torch import nn

from robex.explainers.base import Explainer
from robex.models.layers import BetaSoftplus
from robex.models.normalize import Normalize


def lrp_composite(model: nn.Module, low: float, high: float, stabilizer: float):
    from zennit.composites import SpecialFirstLayerMapComposite
    from zennit.rules import Pass, ZBox, ZPlus
    from zennit.types import Activation, Convolution

    norm = next((m for m in model.modules() if isinstance(m, Normalize)), None)
    lo, hi = norm.bounds(low, high) if norm is not None else (low, high)
    layer_map = [(Activation, Pass()), (BetaSoftplus, Pass()), (Normalize, Pass()),
                 (Convolution, ZPlus(stabilizer=stabilizer)), (nn.Linear, ZPlus(stabilizer=stabilizer))]
    first_map = [((Convolution, nn.Linear), ZBox(lo, hi, stabilizer=stabilizer))]
    return SpecialFirstLayerMapComposite(layer_map=layer_map, first_map=first_map)


class LRP(Explainer):
    def __init__(self, name: str = "lrp", low: float = 0.0, high: float = 1.0, stabilizer: float = 1e-6, normalise=None):
        super().__init__(name, normalise)
        self.low, self.high, self.stabilizer = float(low), float(high), float(stabilizer)

    def attribute(self, model, x, target, create_graph=False):
        composite = lrp_composite(model, self.low, self.high, self.stabilizer)
        with torch.enable_grad(), composite.context(model) as modified:
            if not x.requires_grad:
                x = x.detach().requires_grad_(True)
            out = modified(x)
            start = torch.zeros_like(out).scatter_(1, target.view(-1, 1), out.gather(1, target.view(-1, 1)).detach())
            (relevance,) = torch.autograd.grad(out, x, start, create_graph=create_graph)
        return relevance  # the hooks are removed here: second-order gradients see the plain graph
