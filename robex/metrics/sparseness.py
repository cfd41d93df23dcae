"""Sparseness of one map."""
from __future__ import annotations

import torch

from robex.metrics.base import Metric, MetricInfo, nan_where_not_finite


def gini(h: torch.Tensor) -> torch.Tensor:
    """Gini index of |h| per sample (Hurley & Rickard 2009): with a = sort(|h|) ascending over the
    n entries, G = sum_i (2i - n - 1) a_i / (n sum_i a_i), i = 1..n. 0 for a constant map, (n-1)/n
    for a map with one non-zero entry; NaN for an all-zero map."""
    a = h.reshape(len(h), -1).double().abs().sort(dim=1).values
    n = a.shape[1]
    i = torch.arange(1, n + 1, dtype=a.dtype, device=a.device)
    total = a.sum(1)
    g = ((2 * i - n - 1) * a).sum(1) / (n * total)
    return torch.where(total > 0, g, torch.full_like(g, float("nan"))).float()


class Gini(Metric):
    """Gini index of the map's absolute values: higher = sparser (fewer pixels carry the relevance)."""

    info = MetricInfo(kind="map", higher_is_better=True, range=(0.0, 1.0),
                      citation="Chalasani et al. 2020 (sparseness); Hurley & Rickard 2009 (Gini index)")

    def __call__(self, inputs):
        return nan_where_not_finite(gini(inputs.h_clean), inputs.h_clean)
