"""Aggregates of explanation methods (Rieger & Hansen 2020).

Members are explainers built from their own configs; each member's map is its own normalised map
(sum to one with the default normaliser), so:
- ``AggMean``: the mean of the members' heatmaps (paper Eq. 4),
- ``AggVar``: mean / (std + c) over the members, c = ``c_factor`` x the image's mean std
  (appendix A.2.1: c = 10 x mean std).
Both are then normalised by the aggregate's own normaliser (default: sum to one).
"""
from __future__ import annotations

from collections.abc import Mapping

import torch

from robex.errors import RobexError
from robex.explainers.base import Explainer


class _Aggregate(Explainer):
    def __init__(self, name: str, members, normalise=None):
        super().__init__(name, normalise)
        self.members = list(members.values()) if isinstance(members, Mapping) else list(members)
        if len(self.members) < 2:
            raise RobexError(f"{name}: an aggregate needs at least two member explainers")

    def member_maps(self, model, x, target, create_graph):
        return torch.stack([m.normalise(m.attribute(model, x, target, create_graph)) for m in self.members])


class AggMean(_Aggregate):
    def __init__(self, name: str = "agg_mean", members=(), normalise=None):
        super().__init__(name, members, normalise)

    def attribute(self, model, x, target, create_graph=False):
        return self.member_maps(model, x, target, create_graph).mean(0).unsqueeze(1)


class AggVar(_Aggregate):
    def __init__(self, name: str = "agg_var", members=(), c_factor: float = 10.0, normalise=None):
        super().__init__(name, members, normalise)
        self.c_factor = float(c_factor)

    def attribute(self, model, x, target, create_graph=False):
        maps = self.member_maps(model, x, target, create_graph)
        mean, std = maps.mean(0), maps.std(0, unbiased=False)
        c = self.c_factor * std.flatten(1).mean(1).view(-1, 1, 1)
        return (mean / (std + c + 1e-30)).unsqueeze(1)
