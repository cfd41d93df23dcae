"""What a metric is in robex: a batched callable with its metadata as data (Quantus-style), so tasks,
reports and claims never guess which way is better.

A metric is built from config (``_target_`` plus its parameters) and called with a
:class:`MetricInputs`; it returns one value per sample, a (B,) tensor (NaN where undefined: a
non-finite map never scores as perfect). ``info`` says:

- ``kind``: ``pair`` (compares the clean map with the attacked map), ``map`` (one map's quality,
  computed on the clean map and, under an attack, on the attacked map), ``model`` (needs the
  model and inputs, e.g. deletion, infidelity), ``target`` (compares a targeted attack's target
  map ``h_target`` with the attacked map, e.g. cosd) or ``image`` (compares the input with the
  attacked input, e.g. LPIPS, 1 - SSIM);
- ``higher_is_better`` and ``range`` (the closed interval a value lies in);
- ``citation``.
``params()`` are the metric's parameters (recorded beside its values).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch


KINDS = ("pair", "map", "model", "target", "image")


@dataclass(frozen=True)
class MetricInfo:
    kind: str
    higher_is_better: bool
    range: tuple[float, float]
    citation: str

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"metric kind {self.kind!r}: choose one of {', '.join(KINDS)}")
        if not self.range[0] < self.range[1]:
            raise ValueError(f"metric range {self.range}: the lower end must be below the upper end")


@dataclass
class MetricInputs:
    """Everything a metric may use; tasks fill what they have (None otherwise)."""

    h_clean: torch.Tensor
    h_adv: torch.Tensor | None = None
    h_target: torch.Tensor | None = None
    x: torch.Tensor | None = None
    x_adv: torch.Tensor | None = None
    model: Any = None
    target: torch.Tensor | None = None
    labels: torch.Tensor | None = None  # the true labels of x
    extra: dict = field(default_factory=dict)


class Metric:
    info: MetricInfo
    uses_attribution = False  # True: the task passes the raw attribution as extra["attribution"]
    unavailable: str | None = None  # why it cannot be computed here (missing weights); tasks then
    # write a ``<name>_unavailable`` row (value NaN, n 0, the reason in metric_params), never a number

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
