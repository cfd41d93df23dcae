"""Guided backpropagation (Springenberg et al. 2014), differentiable for attacks.

Each ReLU-like activation (nn.ReLU, or the BetaSoftplus of a softplus surrogate) keeps its
forward value but, in the backward pass, lets only positive gradients through, scaled by its own
derivative (1[z > 0] for ReLU, sigmoid(beta z) for softplus). The modified backward is written with
differentiable torch ops, and its slopes are read from a plain forward pass, so double backprop
through it is the true derivative of the map (checked against finite differences in the tests).
"""
from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn

from robex.explainers.base import Explainer, input_gradient
from robex.models.layers import BetaSoftplus


class _GuidedActivation(torch.autograd.Function):
    """Value: the activation's output. Backward: the guided rule, with the slope taken at ``z_true``,
    the pre-activation of a separate plain forward pass. Its graph is the true network's, so a
    second-order gradient (an attack through the map) differentiates the slopes correctly; using the
    guided pass's own pre-activation would route that derivative through the guided rule again."""

    @staticmethod
    def forward(ctx, z, output, z_true, beta):
        ctx.save_for_backward(z_true)
        ctx.beta = beta
        return output.clone()

    @staticmethod
    def backward(ctx, grad):
        (z,) = ctx.saved_tensors
        slope = (z > 0).to(grad.dtype) if ctx.beta is None else torch.sigmoid(ctx.beta * z)
        return grad.clamp(min=0) * slope, None, None, None


def _activations(model: nn.Module):
    return [m for m in model.modules() if isinstance(m, (nn.ReLU, BetaSoftplus))]


@contextmanager
def guided(model: nn.Module, pre_activations: dict):
    """Give every ReLU / BetaSoftplus module of ``model`` the guided backward; ``pre_activations``
    maps each module to the pre-activations of a plain forward pass, in call order."""
    calls = {m: 0 for m in pre_activations}

    def hook(module, inputs, output):
        z_true = pre_activations[module][calls[module]]
        calls[module] += 1
        beta = module.beta if isinstance(module, BetaSoftplus) else None
        return _GuidedActivation.apply(inputs[0], output, z_true, beta)

    handles = [m.register_forward_hook(hook) for m in pre_activations]
    try:
        yield model
    finally:
        for h in handles:
            h.remove()


def plain_pre_activations(model: nn.Module, x: torch.Tensor) -> dict:
    """Run the plain network on x (with graph) and record each activation module's inputs."""
    store = {m: [] for m in _activations(model)}
    handles = [m.register_forward_hook(lambda mod, i, o: store[mod].append(i[0])) for m in store]
    try:
        model(x)
    finally:
        for h in handles:
            h.remove()
    return store


class GuidedBackprop(Explainer):
    # 2: the map's input-gradient (used by attacks) follows the plain network's forward pass; version
    # 1 routed it through the guided rule, which gave a wrong second-order gradient.
    version = 2

    def __init__(self, name: str = "guided_backprop", normalise=None):
        super().__init__(name, normalise)

    def attribute(self, model, x, target, create_graph=False):
        if create_graph and not x.requires_grad:  # the slopes must depend on this x
            x = x.detach().requires_grad_(True)
        with torch.set_grad_enabled(create_graph):  # graph of the plain pass only for attacks
            pre = plain_pre_activations(model, x)
        with guided(model, pre):
            return input_gradient(model, x, target, create_graph)
