"""Exact input gradients and their pullbacks for plain sequential ReLU / softplus / tanh networks,
without double backprop.

An explanation attack on the gradient map phi(x) = d f_c / dx needs, every step, the pullback
r = d <v, phi(x)> / dx (a Hessian-vector product). Autograd gets it by back-propagating through the
backward graph (double backprop). For an ``nn.Sequential`` of conv / linear / max-pool / flatten and
elementwise activations there is a cheaper exact route: phi depends on x only through the
activations' derivatives D_l(z_l), so

    r = sum_l J_{x->z_l}^T [ g_l * t_l * D_l'(z_l) ],

with g_l the backward signal reaching activation l (already computed for phi) and t_l the forward
tangent J_{x->z_l} v. One forward sweep of v plus one backward sweep gives r: four passes through
the linear layers and a few elementwise products, no autograd graph. ``tests/test_explainers.py``
checks equality with autograd's double backprop.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from robex.models.layers import BetaSoftplus

_LINEAR_TYPES = (nn.Conv2d, nn.Linear, nn.Flatten, nn.MaxPool2d)
_SKIP_TYPES = (nn.Dropout, nn.Identity)
_ACT_TYPES = (BetaSoftplus, nn.Softplus, nn.ReLU, nn.Tanh)


def _pool_ok(layer: nn.MaxPool2d) -> bool:
    k, s = layer.kernel_size, layer.stride if layer.stride is not None else layer.kernel_size
    return k == s and layer.padding in (0, (0, 0)) and layer.dilation in (1, (1, 1)) and not layer.ceil_mode


def supports(model: nn.Module) -> bool:
    """True when ``model`` is an nn.Sequential built only from layers this module handles."""
    if not isinstance(model, nn.Sequential) or len(model) == 0:
        return False
    for layer in model:
        if isinstance(layer, nn.Conv2d):
            if layer.groups != 1 or layer.dilation not in ((1, 1), 1) or layer.padding_mode != "zeros" \
                    or isinstance(layer.padding, str):
                return False
        elif isinstance(layer, nn.MaxPool2d):
            if not _pool_ok(layer):
                return False
        elif not isinstance(layer, _LINEAR_TYPES + _SKIP_TYPES + _ACT_TYPES):
            return False
    return True


def _act_derivatives(layer: nn.Module, z: torch.Tensor):
    """(D, curvature) of an elementwise activation at z: D = D(z), and ``curvature(gd)`` = g * D'(z)
    given gd = g * D(z) (the backward signal after the activation, which the sweep computes anyway);
    None where D' is zero (ReLU). Written from gd: softplus D' = beta D (1 - D), so
    g D' = beta (gd - gd D), one fused multiply-add and a scaling instead of building D' (three
    passes) and multiplying; tanh D' = -2 tanh(z) D, so g D' = -2 tanh(z) gd."""
    if isinstance(layer, nn.ReLU):
        return (z > 0).to(z.dtype), None
    if isinstance(layer, nn.Tanh):  # the ATEX authors' fc activation
        t = torch.tanh(z)
        return 1.0 - t * t, lambda gd: (gd * t).mul_(-2.0)
    beta = float(layer.beta)
    d = torch.sigmoid(beta * z)  # above softplus's linear threshold sigmoid(20) = 1 - 2e-9
    return d, lambda gd: torch.addcmul(gd, gd, d, value=-1.0).mul_(beta)


_FOLD_MAX_IN_CHANNELS = 3  # an image's input layer (grey or RGB)


def _conv_transpose(layer: nn.Conv2d, g: torch.Tensor, in_shape) -> torch.Tensor:
    """The adjoint of the convolution (bias-free) applied to g, shaped like the layer's input.

    For a layer with at most 3 input channels (an image's first layer) it is computed as one matmul
    with W^T followed by ``F.fold`` (fold is the adjoint of unfold, so this is exact): on the CPU,
    conv_transpose2d into 1 channel runs about 5x slower than this (64 x 32 x 28 x 28, one thread:
    5.0 ms vs 1.0 ms; into 3 channels 13.8 vs 6.2 ms), while for 32 input channels it is 6x faster
    than the fold, so the rule is by channel count."""
    stride, pad = layer.stride, layer.padding
    k = layer.kernel_size
    if layer.in_channels <= _FOLD_MAX_IN_CHANNELS:
        w = layer.weight.reshape(layer.out_channels, -1)
        cols = torch.matmul(w.T, g.flatten(2))  # (B, C_in * kh * kw, L)
        return F.fold(cols, tuple(in_shape[-2:]), k, padding=pad, stride=stride)
    out_pad = tuple(in_shape[-2 + i] - ((g.shape[-2 + i] - 1) * stride[i] - 2 * pad[i] + k[i])
                    for i in range(2))
    return F.conv_transpose2d(g, layer.weight, None, stride, pad, out_pad)


def order_pool_and_activation(layers: list, pool_first: bool = True) -> list:
    """The layers with every adjacent (activation, max-pool) pair swapped: ``pool_first`` puts the
    pool before the activation (how the tape evaluates, and how robex's atex_cnn is stored), False
    puts it back after it (the authors' order, make bench's yardstick). The activations here are
    monotone non-decreasing, so max-pooling commutes with them (pool(act(z)) = act(pool(z)), the
    same window maxima), and pooled first, the activation, its derivatives and every elementwise
    product of the sweeps run on a quarter of the elements for 2 x 2 pooling. The gradient and
    pullback are the same functions: the backward signal of an activation before a pool is zero off
    the pooled positions. Only where float rounding makes a window's activations tie (softplus
    saturating to exactly 0 for beta z below about -17, ReLU at 0) can the chosen position differ,
    and there D is below 6e-8 (softplus) or 0 (ReLU)."""
    first, second = (_ACT_TYPES, nn.MaxPool2d) if pool_first else (nn.MaxPool2d, _ACT_TYPES)
    out = list(layers)
    for i in range(len(out) - 1):
        if isinstance(out[i], first) and isinstance(out[i + 1], second):
            out[i], out[i + 1] = out[i + 1], out[i]
    return out


def gradient_with_pullback(model: nn.Sequential, x: torch.Tensor, target: torch.Tensor):
    """Return (phi, logits, pullback): phi = d logit_target / dx for each sample, and
    pullback(v) = d <v, phi(x)> / dx, both exact, without building an autograd graph."""
    with torch.no_grad():
        tape = []  # (layer, info) in the order evaluated
        a = x
        for layer in order_pool_and_activation([m for m in model if not isinstance(m, _SKIP_TYPES)]):
            if isinstance(layer, _ACT_TYPES):
                info = _act_derivatives(layer, a)
            elif isinstance(layer, nn.MaxPool2d):
                out, idx = F.max_pool2d(a, layer.kernel_size, return_indices=True)
                tape.append((layer, (idx, a.shape)))
                a = out
                continue
            else:  # Conv2d / Linear / Flatten remember their input shape
                info = a.shape
            tape.append((layer, info))
            a = layer(a)
        logits = a

        # backward sweep for phi; at each curved activation keep w_l = g_l * D_l'(z_l), the
        # signal reaching its output times its second derivative (what the pullback needs)
        curved = [pos for pos, (layer, info) in enumerate(tape)
                  if isinstance(layer, _ACT_TYPES) and info[1] is not None]
        weight = {}
        g = F.one_hot(target, logits.shape[1]).to(logits.dtype)
        for pos in range(len(tape) - 1, -1, -1):
            layer, info = tape[pos]
            if pos in curved:
                g = g * info[0]
                weight[pos] = info[1](g)
            elif pos == len(tape) - 1 and isinstance(layer, nn.Linear):
                g = layer.weight[target]  # one-hot @ W without the matmul
            else:
                g = _backward(layer, info, g)
        phi = g

    def pullback(v: torch.Tensor) -> torch.Tensor:
        if not curved:  # piecewise-linear network: the Hessian is zero almost everywhere
            return torch.zeros_like(v)
        with torch.no_grad():
            sources, t = {}, v
            for pos in range(curved[-1] + 1):  # forward tangent up to the last curved activation
                layer, info = tape[pos]
                if isinstance(layer, _ACT_TYPES):
                    if pos in weight:
                        sources[pos] = t * weight[pos]
                    t = t * info[0]
                else:
                    t = _tangent(layer, info, t)
            rho = None
            for pos in range(curved[-1], -1, -1):
                layer, info = tape[pos]
                if isinstance(layer, _ACT_TYPES):
                    if rho is None:
                        rho = sources.get(pos)
                    elif pos in sources:
                        rho = torch.addcmul(sources[pos], rho, info[0])
                    else:
                        rho = rho * info[0]
                else:
                    rho = _backward(layer, info, rho)
            return rho

    return phi, logits, pullback


def _backward(layer, info, g):
    """Transpose of the layer's Jacobian applied to g (activation: multiply by D)."""
    if isinstance(layer, _ACT_TYPES):
        return g * info[0]
    if isinstance(layer, nn.MaxPool2d):
        idx, in_shape = info
        return F.max_unpool2d(g, idx, layer.kernel_size, output_size=in_shape[-2:])
    if isinstance(layer, nn.Flatten):
        return g.reshape(info)
    if isinstance(layer, nn.Linear):
        return g @ layer.weight
    return _conv_transpose(layer, g, info)


def _tangent(layer, info, t):
    """The layer's Jacobian applied to t (linear part only, no bias)."""
    if isinstance(layer, nn.MaxPool2d):
        idx, _ = info
        return _pool_select(t, idx)
    if isinstance(layer, nn.Flatten):
        return layer(t)
    if isinstance(layer, nn.Linear):
        return t @ layer.weight.T
    return F.conv2d(t, layer.weight, None, layer.stride, layer.padding)


def _pool_select(t: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """t (N, C, H, W) at the max-pool's argmax positions idx (N, C, Ho, Wo; flat indices h * W + w).

    For channels_last tensors (robex's conv nets on the CPU, robex/pipeline.py) the gather runs in
    their memory order, (N, H * W, C) along dim 1, with no copy, and returns a channels_last view;
    ``flatten(2).gather(2, ...)`` would first copy t into NCHW order (64 x 32 x 28 x 28, one thread:
    2.0 ms vs 0.76 ms). The same values either way."""
    cl = torch.channels_last
    if t.dim() == 4 and t.is_contiguous(memory_format=cl) and idx.is_contiguous(memory_format=cl) \
            and not t.is_contiguous():
        n, c, h, w = t.shape
        out = t.permute(0, 2, 3, 1).reshape(n, h * w, c).gather(1, idx.permute(0, 2, 3, 1).reshape(n, -1, c))
        return out.view(n, idx.shape[2], idx.shape[3], c).permute(0, 3, 1, 2)
    return t.flatten(2).gather(2, idx.flatten(2)).view_as(idx)
