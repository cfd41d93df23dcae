"""Integrated gradients (Sundararajan et al. 2017) on the softmax output of the target class.

relevance = (x - x0) * (1/n) sum_{k=1..n} d softmax_t(x0 + k/n (x - x0)) / dx  (right Riemann sum,
captum's ``riemann_right``), baseline x0 = 0 (black), n = 30 steps (Dombrowski et al.'s setting);
``baseline: mean`` is the mean colour (the RelEx code's zero in normalised space).
Images and steps are batched together (``max_batch`` inputs per pass).
"""
from __future__ import annotations

import torch

from robex.explainers.base import Explainer


class IntegratedGradients(Explainer):
    def __init__(self, name: str = "integrated_gradients", steps: int = 30, baseline=0.0,
                 on_softmax: bool = True, max_batch: int = 512, normalise=None):
        super().__init__(name, normalise)
        if baseline != "mean":
            baseline = float(baseline)
        self.steps, self.baseline, self.on_softmax, self.max_batch = int(steps), baseline, on_softmax, int(max_batch)

    def attribute(self, model, x, target, create_graph=False):
        n = self.steps
        alphas = torch.arange(1, n + 1, dtype=x.dtype, device=x.device) / n
        per_chunk = max(1, self.max_batch // n)
        parts = []
        for s in range(0, len(x), per_chunk):
            xc, tc = x[s:s + per_chunk], target[s:s + per_chunk]
            with torch.enable_grad():
                if not xc.requires_grad:
                    xc = xc.detach().requires_grad_(True)
                if self.baseline == "mean":  # the mean colour (the model's normalisation mean, as RelEx's code)
                    from robex.explainers.relex import fill_colour

                    x0 = fill_colour(model, xc, "auto").expand_as(xc)
                else:
                    x0 = torch.full_like(xc, self.baseline)
                shape = (1, n) + (1,) * (x.dim() - 1)
                path = x0[:, None] + alphas.view(shape) * (xc - x0)[:, None]  # (b, n, C, H, W)
                flat = path.reshape(-1, *x.shape[1:])
                out = model(flat)
                if self.on_softmax:
                    out = out.softmax(1)
                sel = out.gather(1, tc.repeat_interleave(n).view(-1, 1)).sum()
                (g,) = torch.autograd.grad(sel, flat, create_graph=create_graph)
            parts.append((xc - x0) * g.view(len(xc), n, *x.shape[1:]).mean(1))
        return torch.cat(parts)
