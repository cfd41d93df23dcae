"""Target-class retrieval and mask size under attack (the RelEx paper, Figs. 3 and 4).

A map used as a mask m in [0, 1] (the explainer's normaliser makes it one: RelEx's raw mask, a
gradient-type map through ``percentile`` (|.| over channels / 99th percentile, clipped), Grad-CAM
through ``minmax``, as the authors' code does) keeps the pixels it covers and moves the rest to the
fill colour: fill + (x - fill) m. Retrieval asks whether the model then still predicts the class
``inputs.target`` (the clean prediction):

    retrieved = [argmax f(fill + (x_i - fill) m_j) == c_clean],  i, j in {clean, adversarial}

``mask`` picks m_0 (the clean image's map) or m_adv (the attacked image's), ``image`` picks x_0 or
x_adv; the paper's headline is mask = image = adversarial. Without an attack x_adv = x.
:class:`MaskL1Ratio` is ||m_adv||_1 / ||m_0||_1 per image (Fig. 3's inset).
"""
from __future__ import annotations

import torch

from robex.errors import RobexError
from robex.explainers.relex import fill_colour
from robex.metrics.base import Metric, MetricInfo, nan_where_not_finite

SIDES = ("clean", "adversarial")


def masked(x: torch.Tensor, m: torch.Tensor, fill: torch.Tensor) -> torch.Tensor:
    """fill + (x - fill) m, a (B, H, W) mask broadcast over the channels."""
    if m.dim() == x.dim() - 1:
        m = m.unsqueeze(1)
    return fill + (x - fill) * m


class Retrieval(Metric):
    """1 where the masked image is still classified as the target class, else 0 (module docstring)."""

    info = MetricInfo(kind="model", higher_is_better=True, range=(0.0, 1.0),
                      citation="the RelEx paper (target-class retrieval)")

    def __init__(self, mask: str = "adversarial", image: str = "adversarial", fill="auto", batch_size: int = 512):
        if mask not in SIDES or image not in SIDES:
            raise RobexError(f"metric retrieval: mask={mask!r}, image={image!r}: each is one of {', '.join(SIDES)}")
        self.mask, self.image, self.fill, self.batch_size = mask, image, fill, int(batch_size)

    def params(self) -> dict:
        return {"mask": self.mask, "image": self.image, "fill": self.fill}

    def __call__(self, inputs):
        if inputs.model is None or inputs.x is None or inputs.target is None:
            raise RobexError("metric retrieval needs the model, the images and the class")
        m = inputs.h_adv if self.mask == "adversarial" else inputs.h_clean
        x = inputs.x_adv if self.image == "adversarial" else inputs.x
        if m is None or x is None:
            raise RobexError("metric retrieval with an adversarial side needs the attacked image and its map")
        if m.min() < 0 or m.max() > 1:
            raise RobexError(f"metric retrieval needs masks in [0, 1] (got values in [{m.min():.3g}, {m.max():.3g}]): "
                             "give the explainer a normaliser that makes one (percentile, minmax, raw for RelEx)")
        fill = fill_colour(inputs.model, x, self.fill)
        safe = torch.nan_to_num(m, nan=0.0)
        with torch.no_grad():
            inp = masked(x, safe, fill)
            pred = torch.cat([inputs.model(inp[s:s + self.batch_size]).argmax(1)
                              for s in range(0, len(inp), self.batch_size)])
        return nan_where_not_finite((pred == inputs.target).float(), m)


class MaskL1Ratio(Metric):
    """||m_adv||_1 / ||m_0||_1 per image (NaN where the clean mask is all zero)."""

    info = MetricInfo(kind="pair", higher_is_better=False, range=(0.0, float("inf")),
                      citation="the RelEx paper (Fig. 3 inset: the mask shrinks under attack)")

    def __call__(self, inputs):
        if inputs.h_adv is None:
            raise RobexError("metric mask_l1_ratio needs the attacked image's map")
        l1_clean = inputs.h_clean.abs().flatten(1).sum(1)
        l1_adv = inputs.h_adv.abs().flatten(1).sum(1)
        ratio = l1_adv / l1_clean
        ratio = torch.where(l1_clean > 0, ratio, torch.full_like(ratio, float("nan")))
        return nan_where_not_finite(ratio, inputs.h_clean, inputs.h_adv)
