"""Grad-CAM (Selvaraju et al. 2017) at a named layer, upsampled bilinearly to the input size."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from robex.errors import RobexError
from robex.explainers.base import Explainer


class GradCAM(Explainer):
    """relevance = upsample(ReLU(sum_k w_k A_k)), w_k = spatial mean of d logit_target / d A_k, A = the
    output of ``layer``: a module name of the model, or ``auto`` for the last module (in execution
    order) with a 4-d output that is not a pooling layer (the last conv block's activation)."""

    def __init__(self, name: str = "gradcam", layer: str = "", relu: bool = True, normalise=None):
        super().__init__(name, normalise)
        self.layer, self.relu = layer, relu
        self._auto: dict[int, str] = {}

    def _auto_layer(self, model, x):
        seen = []
        hooks = [m.register_forward_hook(lambda mod, i, o, n=n: seen.append(n) if o.dim() == 4 else None)
                 for n, m in model.named_modules()
                 if n and not isinstance(m, (torch.nn.MaxPool2d, torch.nn.AvgPool2d, torch.nn.AdaptiveAvgPool2d,
                                             torch.nn.AdaptiveMaxPool2d)) and not list(m.children())]
        try:
            with torch.no_grad():
                model(x[:1])
        finally:
            for h in hooks:
                h.remove()
        if not seen:
            raise RobexError("gradcam layer=auto: the model has no 4-d feature map")
        return seen[-1]

    def _module(self, model, x):
        layer = self.layer
        if layer == "auto":
            if id(model) not in self._auto:
                self._auto[id(model)] = self._auto_layer(model, x)
            layer = self._auto[id(model)]
        modules = dict(model.named_modules())
        if layer not in modules:
            convs = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)]
            raise RobexError(f"gradcam layer={layer!r} is not a module of the model "
                             f"(conv layers: {', '.join(convs) or 'none'})")
        return modules[layer]

    def attribute(self, model, x, target, create_graph=False):
        store = {}
        handle = self._module(model, x).register_forward_hook(lambda m, i, o: store.__setitem__("a", o))
        try:
            with torch.enable_grad():
                if not x.requires_grad:
                    x = x.detach().requires_grad_(True)
                out = model(x)
                acts = store["a"]
                sel = out.gather(1, target.view(-1, 1)).sum()
                (g,) = torch.autograd.grad(sel, acts, create_graph=create_graph)
        finally:
            handle.remove()
        cam = (g.mean((2, 3), keepdim=True) * acts).sum(1, keepdim=True)
        if self.relu:
            cam = F.relu(cam)
        return F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)
