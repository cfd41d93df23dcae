"""AGG-Mean's measures of a targeted explanation attack (Rieger & Hansen 2020, Sec. 4).

Each similarity m between the target map and the attacked map is reported relative to the start:
m(E_target, E_adv) - m(E_target, E_start), "how much more similar the attack made the map to the
target". Ideal (no effect) is 0; MSE: higher is better, PCC and top-k: lower is better.
"""
from __future__ import annotations

import torch

from robex.metrics.similarity import mse, pearson, topk_intersection


def similarity_deltas(h_target: torch.Tensor, h_start: torch.Tensor, h_adv: torch.Tensor,
                      top_fraction: float = 0.1) -> dict[str, torch.Tensor]:
    k = max(1, round(top_fraction * h_target[0].numel()))
    return {
        "mse_delta": mse(h_target, h_adv) - mse(h_target, h_start),
        "pcc_delta": pearson(h_target, h_adv) - pearson(h_target, h_start),
        "topk_delta": topk_intersection(h_target, h_adv, k) - topk_intersection(h_target, h_start, k),
    }


def mass_inside(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Relevance mass of each (sum-to-one) heatmap inside the mask."""
    return (h * mask).flatten(1).sum(1)


def image_mse(x: torch.Tensor, x_adv: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of the images, averaged over pixels and channels."""
    return ((x_adv - x) ** 2).flatten(1).mean(1)
