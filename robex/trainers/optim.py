"""Optimisers and learning-rate schedules from config.

``optimiser``: ``{name: adam | sgd, lr, weight_decay, momentum}`` (momentum: SGD only);
``schedule``: ``{name: constant}``, ``{name: multistep, milestones: [epochs], gamma}`` or
``{name: cosine}`` (over the epochs of the run). The schedule steps once per epoch."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from robex.errors import RobexError

OPTIMISERS = ("adam", "sgd")
SCHEDULES = ("constant", "multistep", "cosine")


@dataclass(frozen=True)
class OptimiserSpec:
    name: str = "adam"
    lr: float = 1.5e-3
    weight_decay: float = 0.0
    momentum: float = 0.0

    def __post_init__(self):
        if self.name not in OPTIMISERS:
            raise RobexError(f"optimiser.name={self.name!r}: choose one of {', '.join(OPTIMISERS)}")
        try:
            lr, wd, mom = float(self.lr), float(self.weight_decay), float(self.momentum)
        except (TypeError, ValueError):
            raise RobexError(f"optimiser lr / weight_decay / momentum must be numbers (got {self})") from None
        if not (lr > 0 and wd >= 0 and 0 <= mom < 1):
            raise RobexError(f"optimiser: lr > 0, weight_decay >= 0 and 0 <= momentum < 1 required (got {self})")
        if self.name == "adam" and mom:
            raise RobexError("optimiser.momentum is an SGD setting; Adam has none")

    def build(self, params) -> torch.optim.Optimizer:
        if self.name == "adam":
            return torch.optim.Adam(params, lr=float(self.lr), weight_decay=float(self.weight_decay))
        return torch.optim.SGD(params, lr=float(self.lr), momentum=float(self.momentum),
                               weight_decay=float(self.weight_decay))


@dataclass(frozen=True)
class ScheduleSpec:
    name: str = "constant"
    milestones: tuple = field(default_factory=tuple)
    gamma: float = 0.1

    def __post_init__(self):
        if self.name not in SCHEDULES:
            raise RobexError(f"schedule.name={self.name!r}: choose one of {', '.join(SCHEDULES)}")

    def build(self, optimiser: torch.optim.Optimizer, epochs: int):
        if self.name == "constant":
            return None
        if self.name == "multistep":
            return torch.optim.lr_scheduler.MultiStepLR(optimiser, list(self.milestones), float(self.gamma))
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, max(1, int(epochs)))


def optimiser_spec(node) -> OptimiserSpec:
    return node if isinstance(node, OptimiserSpec) else OptimiserSpec(**dict(node or {}))


def schedule_spec(node) -> ScheduleSpec:
    if isinstance(node, ScheduleSpec):
        return node
    d = dict(node or {})
    if "milestones" in d:
        d["milestones"] = tuple(d["milestones"])
    return ScheduleSpec(**d)
