"""Per-sample similarity of two batches of maps. Inputs are (B, ...) tensors; outputs (B,) tensors.

Each is checked in ``tests/test_metrics.py`` against a trusted reference (scipy.stats.spearmanr,
numpy, skimage.metrics.structural_similarity) or hand-computed cases.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from robex.errors import RobexError
from robex.metrics.base import Metric, MetricInfo, nan_where_not_finite


def _flat(a: torch.Tensor) -> torch.Tensor:
    return a.reshape(len(a), -1).double()


def average_ranks(a: torch.Tensor) -> torch.Tensor:
    """Ranks 1..N along dim 1, ties sharing their average rank (scipy's 'average' method)."""
    a = _flat(a)
    b, n = a.shape
    values, order = a.sort(dim=1)
    new_group = torch.ones_like(values, dtype=torch.bool)
    new_group[:, 1:] = values[:, 1:] != values[:, :-1]
    group = new_group.cumsum(1) - 1
    pos = torch.arange(1, n + 1, dtype=torch.float64, device=a.device).expand(b, n)
    sums = torch.zeros_like(values).scatter_add_(1, group, pos)
    counts = torch.zeros_like(values).scatter_add_(1, group, torch.ones_like(values))
    avg = (sums / counts.clamp_min(1)).gather(1, group)
    return torch.empty_like(avg).scatter_(1, order, avg)


def pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pearson correlation per sample (NaN when a map is constant)."""
    a, b = _flat(a), _flat(b)
    a = a - a.mean(1, keepdim=True)
    b = b - b.mean(1, keepdim=True)
    return ((a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1))).float()


def spearman(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Spearman rank correlation per sample, average ranks for ties (as scipy.stats.spearmanr)."""
    return pearson(average_ranks(a), average_ranks(b))


def topk_intersection(a: torch.Tensor, b: torch.Tensor, k: int) -> torch.Tensor:
    """|top-k(a) ∩ top-k(b)| / k per sample (ties broken by torch.topk's order)."""
    fa, fb = _flat(a), _flat(b)
    ma = torch.zeros_like(fa).scatter_(1, fa.topk(k, dim=1).indices, 1.0)
    mb = torch.zeros_like(fb).scatter_(1, fb.topk(k, dim=1).indices, 1.0)
    return ((ma * mb).sum(1) / k).float()


def mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean squared difference per sample."""
    return ((_flat(a) - _flat(b)) ** 2).mean(1).float()


def cosine_similarity(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return F.cosine_similarity(_flat(a), _flat(b), dim=1).float()


def minmax_normalise(a: torch.Tensor) -> torch.Tensor:
    """Scale each map to [0, 1] (constant maps become zeros)."""
    f = a.reshape(len(a), -1)
    lo, hi = f.amin(1, keepdim=True), f.amax(1, keepdim=True)
    return ((f - lo) / (hi - lo).clamp_min(1e-30)).reshape(a.shape)


def _gaussian_window(size: int, sigma: float) -> torch.Tensor:
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(r ** 2) / (2 * sigma ** 2))
    g = g / g.sum()
    return g[:, None] * g[None, :]


def ssim(a: torch.Tensor, b: torch.Tensor, data_range: float = 1.0, win_size: int = 11,
         sigma: float = 1.5) -> torch.Tensor:
    """SSIM per sample for single-channel maps (B, H, W): Gaussian window (11, sigma 1.5), population
    statistics, K1 = 0.01, K2 = 0.03, mean over the positions where the window fits inside the image
    (the settings of skimage's structural_similarity(gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False))."""
    x = a.reshape(len(a), 1, *a.shape[-2:]).double()
    y = b.reshape(len(b), 1, *b.shape[-2:]).double()
    w = _gaussian_window(win_size, sigma).to(x.device).view(1, 1, win_size, win_size)
    mu_x, mu_y = F.conv2d(x, w), F.conv2d(y, w)
    sxx = F.conv2d(x * x, w) - mu_x ** 2
    syy = F.conv2d(y * y, w) - mu_y ** 2
    sxy = F.conv2d(x * y, w) - mu_x * mu_y
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (sxx + syy + c2))
    return s.flatten(1).mean(1).float()


# -- the same measures as configurable metrics with metadata (robex.metrics.base) -----------------


def pixel_map(h: torch.Tensor) -> torch.Tensor:
    """A per-channel map (B, C, H, W: RelEx's mask) as one value per pixel, the channel mean, so
    every method is compared over the same H x W pixels; (B, H, W) maps are returned as they are."""
    return h.mean(1) if h.dim() == 4 else h


class Spearman(Metric):
    """Spearman rank correlation between the clean and the attacked map (average ranks for ties),
    over pixels (:func:`pixel_map`)."""

    info = MetricInfo(kind="pair", higher_is_better=True, range=(-1.0, 1.0),
                      citation="Ghorbani, Abid & Zou 2019, 'Interpretation of neural networks is fragile'")

    def __call__(self, inputs):
        a, b = pixel_map(inputs.h_clean), pixel_map(inputs.h_adv)
        return nan_where_not_finite(spearman(a, b), inputs.h_clean, inputs.h_adv)


class TopKIntersection(Metric):
    """Share of the clean map's top-k pixels that are also in the attacked map's top-k (over pixels,
    :func:`pixel_map`). ``k`` pixels, or ``fraction`` of the map's pixels (the RelEx paper's 1000 of
    224 x 224 at any image size)."""

    info = MetricInfo(kind="pair", higher_is_better=True, range=(0.0, 1.0),
                      citation="Ghorbani, Abid & Zou 2019, 'Interpretation of neural networks is fragile'")

    def __init__(self, k: int | None = 50, fraction: float | None = None):
        if (k is None) == (fraction is None):
            raise RobexError("top-k intersection: give k (pixels) or fraction (of the map's pixels), not both")
        if k is not None and int(k) < 1:
            raise RobexError(f"top-k intersection: k={k} must be >= 1")
        if fraction is not None and not 0 < float(fraction) <= 1:
            raise RobexError(f"top-k intersection: fraction={fraction} must lie in (0, 1]")
        self.k = None if k is None else int(k)
        self.fraction = None if fraction is None else float(fraction)

    def params(self):
        return {"k": self.k} if self.fraction is None else {"fraction": self.fraction}

    def __call__(self, inputs):
        a, b = pixel_map(inputs.h_clean), pixel_map(inputs.h_adv)
        n = a[0].numel()
        k = self.k if self.fraction is None else max(1, round(self.fraction * n))
        if k > n:
            raise RobexError(f"top-k intersection: k={k} exceeds the {n} pixels of a map")
        values = topk_intersection(a, b, k)
        return nan_where_not_finite(values, inputs.h_clean, inputs.h_adv)


class CosineDistance(Metric):
    """Cosine distance 1 - cos(h_target, h) between a targeted attack's target map and the map of the
    attacked input (Wang et al. 2020; the smoothed-explanations paper's cosd, lower = the attack got
    closer to its target; in [0, 1] for non-negative maps). A ``target`` metric: the evaluation also
    reports it for the clean map (row ``<name>_start``), where the attack started."""

    info = MetricInfo(kind="target", higher_is_better=True, range=(0.0, 2.0),
                      citation="Wang et al. 2020, 'Smoothed geometry for robust attribution'")

    def __call__(self, inputs):
        if inputs.h_target is None:
            raise RobexError("cosd compares a targeted attack's target map with the attacked map: the "
                             "job's attack has no target maps (use a map attack with target: other_image)")
        a, b = pixel_map(inputs.h_target), pixel_map(inputs.h_adv)
        return nan_where_not_finite(1.0 - cosine_similarity(a, b), inputs.h_target, inputs.h_adv)
