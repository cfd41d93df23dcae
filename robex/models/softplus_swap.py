"""The ReLU -> softplus(beta) model transform (Dombrowski et al. 2019), reusable by every paper.

``with relu_to_softplus(model, beta=10) as swap:`` replaces every ``nn.ReLU`` module of ``model``
by a :class:`BetaSoftplus` in place; ``swap.set_beta(b)`` changes all of them (schedules), and on
exit the original ReLU modules are put back, so the network is restored exactly.
"""
from __future__ import annotations

import math
from contextlib import contextmanager

from torch import nn

from robex.models.layers import BetaSoftplus


class SoftplusSwap:
    def __init__(self, replaced: list[tuple[nn.Module, str, nn.Module, BetaSoftplus]]):
        self.replaced = replaced

    @property
    def count(self) -> int:
        return len(self.replaced)

    def set_beta(self, beta: float) -> None:
        for _, _, _, sp in self.replaced:
            sp.beta = float(beta)


@contextmanager
def relu_to_softplus(model: nn.Module, beta: float):
    replaced = []
    for parent in list(model.modules()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, nn.ReLU):
                sp = BetaSoftplus(beta)
                setattr(parent, child_name, sp)
                replaced.append((parent, child_name, child, sp))
    try:
        yield SoftplusSwap(replaced)
    finally:
        for parent, child_name, original, _ in replaced:
            setattr(parent, child_name, original)


class BetaSchedule:
    """beta for iteration i of n: fixed (``end`` is None) or growing geometrically from ``start``
    to ``end`` (Dombrowski: beta_i = 10 * 10^(i/n), i.e. start 10, end 100)."""

    def __init__(self, start: float = 10.0, end: float | None = 100.0):
        self.start, self.end = float(start), (None if end is None else float(end))

    def __call__(self, i: int, n: int) -> float:
        if self.end is None or n <= 1:
            return self.start
        return self.start * math.exp(math.log(self.end / self.start) * i / (n - 1))
