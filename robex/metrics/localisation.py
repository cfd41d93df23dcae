"""Where a map puts its relevance, against a ground-truth region: the class-sensitivity (pointing)
test of the smoothed-explanations paper (Table 1), after Zhang et al.'s pointing game."""
from __future__ import annotations

import torch

from robex.errors import RobexError
from robex.metrics.base import Metric, MetricInfo, nan_where_not_finite


def top_k_share_in_mask(h: torch.Tensor, mask: torch.Tensor, k: int = 20) -> torch.Tensor:
    """(B,) share of the k largest |h| values (pixels of a (B, H, W) map) that lie inside the
    (B, H, W) bool mask. Ties at the k-th value are broken by position (torch.topk's order)."""
    if h.shape != mask.shape:
        raise RobexError(f"map {tuple(h.shape)} and mask {tuple(mask.shape)} differ in shape")
    flat = h.reshape(len(h), -1).abs()
    if not 1 <= k <= flat.shape[1]:
        raise RobexError(f"k={k} must lie in [1, {flat.shape[1]}] (the pixels of a map)")
    idx = flat.topk(k, dim=1).indices
    inside = mask.reshape(len(mask), -1).bool().gather(1, idx)
    return inside.float().mean(1)


class TopKInMask(Metric):
    """Share of the map's top-k pixels inside the object's mask (``inputs.extra['mask']``, (B, H, W)
    bool): 1 when the map's k largest values all lie on the object. The paper uses k = 20."""

    info = MetricInfo(kind="map", higher_is_better=True, range=(0.0, 1.0),
                      citation="Zhang et al. 2016 (pointing game); smoothed-explanations paper, Table 1")

    def __init__(self, k: int = 20):
        if int(k) < 1:
            raise RobexError(f"metric top_k_in_mask: k={k!r} must be >= 1")
        self.k = int(k)

    def params(self) -> dict:
        return {"k": self.k}

    def __call__(self, inputs):
        mask = inputs.extra.get("mask")
        if mask is None:
            raise RobexError("metric top_k_in_mask needs the object masks (inputs.extra['mask']); "
                             "use it with a data set that has masks (two_objects, coco_two_objects)")
        return nan_where_not_finite(top_k_share_in_mask(inputs.h_clean, mask.to(inputs.h_clean.device), self.k),
                                    inputs.h_clean)
