"""Several perturbation models applied one after another (the smoothed-explanations paper's
Delta+StAdv(+Recolor): colour -> flow -> delta), optimised together: one parameter list, each part
projected onto its own budget, penalties added. The row records the parts joined by '+' in
``threat`` with each part's budget (``linf:0.0314+flow:0.05``); ``budget`` is NaN (no single ball)."""
from __future__ import annotations

from collections.abc import Mapping

import torch

from robex.errors import RobexError
from robex.threats.base import PerturbationModel


class Composite(PerturbationModel):
    def __init__(self, parts):
        """``parts``: perturbation models in the order they are applied, a list or a mapping name ->
        model (``conf/perturbation/`` options composed into ``perturbation.parts.<name>``)."""
        named = dict(parts.items()) if isinstance(parts, Mapping) else dict(enumerate(parts or []))
        bad = [str(k) for k, p in named.items() if not isinstance(p, PerturbationModel)]
        if not named or bad:
            raise RobexError(f"a composite perturbation needs perturbation models (robex/threats, "
                             f"conf/perturbation/); not one: {', '.join(bad) or 'no parts given'}")
        self.parts = list(named.values())
        self.sizes: list[int] = []

    @property
    def name(self) -> str:
        return "+".join(p.name for p in self.parts)

    @property
    def lrs(self):
        if all(p.lrs is None for p in self.parts):
            return None
        return [lr for p, n in zip(self.parts, self.sizes) for lr in (p.lrs or [None] * n)]

    def _split(self, params):
        out, i = [], 0
        for n in self.sizes:
            out.append(params[i:i + n])
            i += n
        return out

    def init(self, x0):
        params = [p.init(x0) for p in self.parts]
        self.sizes = [len(p) for p in params]
        return [t for p in params for t in p]

    def apply(self, x0, params):
        x = x0
        for part, p in zip(self.parts, self._split(params)):
            x = part.apply(x, p)
        return x

    def constrain(self, params, x0):
        return [t for part, p in zip(self.parts, self._split(params)) for t in part.constrain(p, x0)]

    def sample(self, x0, generator=None):
        params = [p.sample(x0, generator) for p in self.parts]
        self.sizes = [len(p) for p in params]
        return [t for p in params for t in p]

    def penalty(self, params):
        return torch.stack([part.penalty(p) for part, p in zip(self.parts, self._split(params))]).sum(0)

    def columns(self):
        desc = "+".join(f"{c['threat']}:{c['budget']:g}" for c in (p.columns() for p in self.parts))
        return {"threat": desc, "budget": float("nan"), "units": "+".join(p.columns()["units"] for p in self.parts)}
