"""DeepLIFT (Shrikumar et al. 2017, rescale rule) through captum's ``DeepLift``, on the softmax output
of the target class (``output: softmax``, what the RelEx authors' code does) or on its logit.

The baseline is the fill colour of the masking metrics (:func:`robex.explainers.relex.fill_colour`:
the model's normalisation mean, "zero in normalised space"). On the logit of a ReLU network without
max pooling the attributions of an image sum exactly to f_c(x) - f_c(baseline) (summation to delta,
checked in tests); captum's rules for softmax and max pooling only approximate it (its convergence
delta is about 1e-3 to 1e-2 of a probability on small nets), which robex inherits with the reference.

captum applies DeepLIFT's rule only to the non-linear modules it knows (ReLU, ELU, Sigmoid, Tanh,
Softmax, max pooling); any other activation module would silently be treated by its gradient, so
robex refuses models that hold one (e.g. softplus: use a ReLU network).
"""
from __future__ import annotations

import torch
from torch import nn

from robex.errors import RobexError
from robex.explainers.base import Explainer
from robex.explainers.relex import fill_colour

KNOWN = (nn.ReLU, nn.ELU, nn.Sigmoid, nn.Tanh, nn.Softmax, nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)
LINEAR = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d, nn.AvgPool2d,
          nn.AdaptiveAvgPool2d, nn.Flatten, nn.Dropout, nn.Identity, nn.Sequential)


def check_supported(model: nn.Module) -> None:
    """Raise RobexError naming the first leaf module DeepLIFT would treat wrongly."""
    for name, m in model.named_modules():
        if list(m.children()) or isinstance(m, KNOWN + LINEAR) or type(m).__name__ == "Normalize":
            continue
        raise RobexError(f"deeplift: the model's module {name!r} ({type(m).__name__}) has no DeepLIFT rule in "
                         "captum (it would be treated by its gradient); use a ReLU network")


class _SoftmaxOf(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model, self.softmax = model, nn.Softmax(dim=1)

    def forward(self, x):
        return self.softmax(self.model(x))


class DeepLift(Explainer):
    """relevance = captum DeepLift(softmax o model, or the logits) against the fill-colour baseline."""

    differentiable = False

    def __init__(self, name: str = "deeplift", fill="auto", output: str = "softmax", normalise=None):
        super().__init__(name, normalise)
        if output not in ("softmax", "logit"):
            raise RobexError(f"{name} output={output!r}: choose softmax or logit")
        self.fill, self.output = fill, output

    def attribute(self, model, x, target, create_graph=False):
        from captum.attr import DeepLift as CaptumDeepLift

        if create_graph:
            raise RobexError(f"{self.name} is not differentiable for attacks here (captum hooks): attack another "
                             "explainer and transfer")
        check_supported(model)
        baseline = fill_colour(model, x, self.fill).expand_as(x).contiguous()
        with torch.enable_grad():
            net = _SoftmaxOf(model) if self.output == "softmax" else model
            attr = CaptumDeepLift(net).attribute(x.detach().clone(), baselines=baseline, target=target)
        return attr.detach()
