"""What a metric is in robex: a batched callable with its metadata as data (Quantus-style), so tasks,
reports and claims never guess which way is better.

A metric is built from config (``_target_`` plus its parameters) and called with a
:class:`MetricInputs`; it returns one value per sample, a (B,) tensor (NaN where undefined: a
non-finite map never scores as perfect). ``info`` says:

- ``kind``: ``pair`` (compares the clean map with the attacked map), ``map`` (one map's quality,
  computed on the clean map and, under an attack, on the attacked map), or ``model`` (needs the
  model and inputs, e.g. deletion, infidelity);
- ``higher_is_better`` and ``range`` (the closed interval a value lies in);
- ``citation``.
``params()`` are the metric's parameters (recorded beside its values).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass(frozen=True)
class MetricInfo:
    kind: str
    higher_is_better: bool
    range: tuple[float, float]
    citation: str


@dataclass
class MetricInputs:
    """Everything a metric may use; tasks fill what they have (None otherwise)."""

    h_clean: torch.Tensor
    h_adv: torch.Tensor | None = None
    x: torch.Tensor | None = None
    x_adv: torch.Tensor | None = None
    model: Any = None
    target: torch.Tensor | None = None
    extra: dict = field(default_factory=dict)


class Metric:
    info: MetricInfo
    uses_attribution = False  # True: the task passes the raw attribution as extra["attribution"]

    def params(self) -> dict:
        return {}

    def __call__(self, inputs: MetricInputs) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"


def nan_where_not_finite(values: torch.Tensor, *maps: torch.Tensor) -> torch.Tensor:
    """Set a sample's value to NaN when any of its maps holds a non-finite entry."""
    bad = torch.zeros(len(values), dtype=torch.bool, device=values.device)
    for m in maps:
        bad |= ~torch.isfinite(m.reshape(len(m), -1)).all(1).to(values.device)
    return torch.where(bad, torch.full_like(values, float("nan")), values)
