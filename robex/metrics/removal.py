"""Deletion and preservation (pixel removal, the RelEx paper's Sec. 5 and the authors' code), and the
relevance R that combines them.

Pixels are ranked by the map (B, H, W; ties keep raster order) and removed ``per_step`` at a time
(default: one row's worth, W pixels, so H steps for an H x W image); a removed pixel takes the fill
colour in every channel (``fill`` as :func:`robex.explainers.relex.fill_colour`: the model's
normalisation mean, the "0 in normalised space" of the reference code). After each step the score is
the softmax probability of the class (``inputs.target``: the clean prediction). The curve runs over
the fraction removed, 0 to 1, with the untouched image first, and its area is taken by the trapezoid
rule.

- ``order: deletion`` removes the most salient pixels first: lower is better.
- ``order: preservation`` removes the least salient first (keeps the most salient): higher is better.

The map scored is the task's map of the clean image (``h_clean``) or, with ``image: adversarial``, the
map of the attacked image applied to the attacked image. :func:`relevance` is the paper's
R = 2 / (1/P + 1/(1 - D)) (the harmonic mean of P and 1 - D; the authors' code takes the harmonic
mean of D and P literally, which cannot give the paper's values, so robex follows the paper).
"""
from __future__ import annotations

import torch

from robex.errors import RobexError
from robex.explainers.relex import fill_colour
from robex.metrics.base import Metric, MetricInfo, nan_where_not_finite

ORDERS = ("deletion", "preservation")


def removal_curve(model, x: torch.Tensor, saliency: torch.Tensor, target: torch.Tensor, order: str,
                  per_step: int, fill: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """(B, n_steps + 1) softmax probability of ``target`` as pixels are removed (column 0: none)."""
    if order not in ORDERS:
        raise RobexError(f"pixel removal order={order!r}: choose one of {', '.join(ORDERS)}")
    b, c, h, w = x.shape
    n_pix = h * w
    if not 1 <= per_step <= n_pix:
        raise RobexError(f"pixel removal per_step={per_step} must lie in [1, {n_pix}] (the image's pixels)")
    rank_order = torch.argsort(saliency.reshape(b, n_pix), dim=1, descending=(order == "deletion"), stable=True)
    rank = torch.empty_like(rank_order)
    rank.scatter_(1, rank_order, torch.arange(n_pix, device=x.device).expand(b, n_pix))  # position of each pixel
    counts = torch.arange(0, n_pix + per_step, per_step, device=x.device).clamp_max(n_pix)
    counts = torch.unique_consecutive(counts)                            # 0, k, 2k, ..., n_pix
    n_steps = len(counts)
    per_chunk = max(1, batch_size // n_steps)
    scores = []
    with torch.no_grad():
        for s in range(0, b, per_chunk):
            xc, rc, tc = x[s:s + per_chunk], rank[s:s + per_chunk], target[s:s + per_chunk]
            fc = fill if fill.shape[0] == 1 else fill[s:s + per_chunk]
            removed = (rc.view(-1, 1, 1, h, w) < counts.view(1, -1, 1, 1, 1)).to(x.dtype)  # (b, S, 1, H, W)
            inputs = xc.unsqueeze(1) * (1 - removed) + fc.unsqueeze(1) * removed
            probs = model(inputs.flatten(0, 1)).softmax(1).view(len(xc), n_steps, -1)
            scores.append(probs.gather(2, tc.view(-1, 1, 1).expand(-1, n_steps, 1)).squeeze(2))
    return torch.cat(scores)


def curve_auc(curve: torch.Tensor) -> torch.Tensor:
    """Trapezoid area under (B, S + 1) equally spaced scores on [0, 1]."""
    return torch.trapezoid(curve, dx=1.0 / (curve.shape[1] - 1), dim=1)


def relevance(preservation: torch.Tensor | float, deletion: torch.Tensor | float):
    """R = harmonic mean of P and 1 - D (the paper's definition); 0 when either is 0."""
    p, keep = preservation, 1 - deletion
    if isinstance(p, torch.Tensor):
        return torch.where((p > 0) & (keep > 0), 2 * p * keep / (p + keep), torch.zeros_like(p))
    return 2 * p * keep / (p + keep) if p > 0 and keep > 0 else 0.0


class PixelRemoval(Metric):
    """Deletion or preservation AUC (module docstring). Needs the model, the images and the class."""

    def __init__(self, order: str = "deletion", per_step: int | None = None, fill="auto", image: str = "clean",
                 batch_size: int = 512):
        if order not in ORDERS:
            raise RobexError(f"metric pixel removal: order={order!r}: choose one of {', '.join(ORDERS)}")
        if image not in ("clean", "adversarial"):
            raise RobexError(f"metric pixel removal: image={image!r}: choose clean or adversarial")
        self.order, self.per_step, self.fill, self.image, self.batch_size = order, per_step, fill, image, int(batch_size)
        self.info = MetricInfo(kind="model", higher_is_better=(order == "preservation"), range=(0.0, 1.0),
                               citation="Petsiuk et al. 2018 (RISE, deletion); the RelEx paper (preservation, R)")

    def params(self) -> dict:
        return {"order": self.order, "per_step": self.per_step, "fill": self.fill, "image": self.image}

    def auc(self, inputs, order: str) -> torch.Tensor:
        """(B,) AUC of the curve for ``order`` with this metric's settings (NaN for non-finite maps)."""
        if inputs.model is None or inputs.x is None or inputs.target is None:
            raise RobexError("metric pixel removal needs the model, the images and the class")
        x, h = inputs.x, inputs.h_clean
        if self.image == "adversarial":
            if inputs.x_adv is None or inputs.h_adv is None:
                raise RobexError("metric pixel removal image=adversarial needs an attack (attack=none gives none)")
            x, h = inputs.x_adv, inputs.h_adv
        if h.dim() == x.dim():
            h = h.abs().sum(1)
        per_step = x.shape[-1] if self.per_step is None else int(self.per_step)
        fill = fill_colour(inputs.model, x, self.fill)
        safe = torch.nan_to_num(h, nan=0.0, posinf=0.0, neginf=0.0)
        values = curve_auc(removal_curve(inputs.model, x, safe, inputs.target, order, per_step, fill,
                                         self.batch_size))
        return nan_where_not_finite(values, h)

    def __call__(self, inputs):
        return self.auc(inputs, self.order)

class Relevance(PixelRemoval):
    """R = harmonic mean of P and 1 - D per image (:func:`relevance`), both AUCs computed here with
    the same settings; its mean over images is what robex reports as R (the paper does not say
    whether it averages R or forms it from the mean P and D; per image gives an interval)."""

    def __init__(self, per_step: int | None = None, fill="auto", image: str = "clean", batch_size: int = 512):
        super().__init__("deletion", per_step, fill, image, batch_size)
        self.info = MetricInfo(kind="model", higher_is_better=True, range=(0.0, 1.0),
                               citation="the RelEx paper (R, the harmonic mean of preservation and 1 - deletion)")

    def params(self) -> dict:
        return {"per_step": self.per_step, "fill": self.fill, "image": self.image}

    def __call__(self, inputs):
        d, p = self.auc(inputs, "deletion"), self.auc(inputs, "preservation")
        return torch.where(torch.isfinite(d) & torch.isfinite(p), relevance(p, d), torch.full_like(d, float("nan")))
