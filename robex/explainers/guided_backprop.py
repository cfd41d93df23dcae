"""Guided backpropagation (Springenberg et al. 2014), differentiable for attacks.

Each ReLU-like activation (nn.ReLU, or the BetaSoftplus of a softplus-swapped network) keeps its
forward value but, in the backward pass, lets only positive gradients through, scaled by its own
derivative (1[z > 0] for ReLU, sigmoid(beta z) for softplus). The modified backward is written with
differentiable torch ops, so double backprop through it works.
"""
from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn

from robex.explainers.base import Explainer, input_gradient
from robex.models.layers import BetaSoftplus


class _GuidedActivation(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z, output, beta):
        ctx.save_for_backward(z)
        ctx.beta = beta
        return output.clone()

    @staticmethod
    def backward(ctx, grad):
        (z,) = ctx.saved_tensors
        slope = (z > 0).to(grad.dtype) if ctx.beta is None else torch.sigmoid(ctx.beta * z)
        return grad.clamp(min=0) * slope, None, None


def _hook(module, inputs, output):
    beta = module.beta if isinstance(module, BetaSoftplus) else None
    return _GuidedActivation.apply(inputs[0], output, beta)


@contextmanager
def guided(model: nn.Module):
    """Temporarily give every ReLU / BetaSoftplus module of ``model`` the guided backward."""
    handles = [m.register_forward_hook(_hook) for m in model.modules() if isinstance(m, (nn.ReLU, BetaSoftplus))]
    try:
        yield model
    finally:
        for h in handles:
            h.remove()


class GuidedBackprop(Explainer):
    def __init__(self, name: str = "guided_backprop"):
        super().__init__(name)

    def attribute(self, model, x, target, create_graph=False):
        with guided(model):
            return input_gradient(model, x, target, create_graph)
