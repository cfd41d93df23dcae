"""Model transforms. A transform returns a NEW model and never mutates the one it is given, so a
model shared by the pipeline's memo, a defense or another explainer is never changed behind their back.

- :func:`softplus_surrogate`: every ``nn.ReLU`` replaced by softplus(beta) (Dombrowski et al.
  2019), with ``set_beta`` for schedules. Attacks on explanations use it as their surrogate.
- :func:`beta_smoothed`: every activation set to softplus(beta), ReLUs and softplus layers alike
  (beta-smoothing explanations; inside an attack it overrides the attack's surrogate beta, so the
  attacked network is the beta-smoothed network itself). It shares the model's parameters.
"""
from __future__ import annotations

import copy
import math

from torch import nn

from robex.models.layers import BetaSoftplus


class SurrogateHandle:
    """The softplus activations of a surrogate: ``count`` = ReLUs replaced (0 for a network that is
    already smooth, whose surrogate computes exactly what the model does); ``set_beta`` for schedules."""

    def __init__(self, activations: list[BetaSoftplus]):
        self.activations = activations

    @property
    def count(self) -> int:
        return len(self.activations)

    def set_beta(self, beta: float) -> None:
        for sp in self.activations:
            sp.beta = float(beta)


def softplus_surrogate(model: nn.Module, beta: float) -> tuple[nn.Module, SurrogateHandle]:
    """A deep copy of ``model`` (same class, so fast paths such as the sequential tape still apply)
    with every ``nn.ReLU`` replaced by softplus(beta), and its handle. ``model`` is not touched."""
    net = copy.deepcopy(model)
    activations = []
    for parent in list(net.modules()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, nn.ReLU):
                sp = BetaSoftplus(beta)
                setattr(parent, child_name, sp)
                activations.append(sp)
    return net.eval(), SurrogateHandle(activations)


class BetaSchedule:
    """beta for iteration i of n: fixed (``end`` is None) or growing geometrically from ``start``
    to ``end`` (Dombrowski: beta_i = 10 * 10^(i/n), i.e. start 10, end 100)."""

    def __init__(self, start: float = 10.0, end: float | None = 100.0):
        self.start, self.end = float(start), (None if end is None else float(end))

    def __call__(self, i: int, n: int) -> float:
        if self.end is None or n <= 1:
            return self.start
        return self.start * math.exp(math.log(self.end / self.start) * i / (n - 1))


def _structural_copy(model: nn.Module) -> nn.Module:
    """A new module tree whose parameters and buffers ARE the model's (no tensor is copied): cheap,
    and it follows the model's weights when they are trained in place."""
    memo = {id(t): t for t in list(model.parameters()) + list(model.buffers())}
    return copy.deepcopy(model, memo)


def beta_smoothed(model: nn.Module, beta: float) -> nn.Module:
    """``model`` with every ``nn.ReLU`` replaced by softplus(beta) and every softplus layer's beta set
    to ``beta``; parameters shared with ``model``, whose own modules are not touched."""
    if not beta > 0:
        from robex.errors import RobexError

        raise RobexError(f"beta={beta!r}: beta-smoothing needs beta > 0")
    net = _structural_copy(model)
    for parent in list(net.modules()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, nn.ReLU):
                setattr(parent, child_name, BetaSoftplus(beta))
            elif isinstance(child, BetaSoftplus):
                child.beta = float(beta)
    return net
