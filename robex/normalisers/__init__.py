"""Normalisers: the named step that turns an explainer's raw attribution (B, C, H, W) into the map
a paper compares. Explainers return raw, signed attributions; each explainer config chooses its
normaliser (``normalise:``), so a paper that needs signed maps (cascade randomisation), raw masks
(RelEx) or a 99th-percentile scaling gets them without a new explainer.

Every normaliser is differentiable (attacks back-propagate through it) and batched.
"""
from __future__ import annotations

import torch

_TINY = 1e-12


class Normaliser:
    """Base class: ``normaliser(relevance) -> map``. ``signed`` says whether maps keep a sign."""

    name = "normaliser"
    signed = False

    def __call__(self, relevance: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class AbsSumOne(Normaliser):
    """sum |R| over channels, then divide by the image's total so each map sums to one:
    (B, C, H, W) -> (B, H, W). For a gradient this is the relative importance |phi_t| / ||phi||_1
    (ATEX Sec. 2.1); robex's default, used by every ATEX and AGG-Mean preset."""

    name = "abs_sum_one"

    def __call__(self, relevance):
        h = relevance.abs().sum(1)
        return h / h.flatten(1).sum(1).clamp_min(_TINY).view(-1, 1, 1)


class SignedChannelSum(Normaliser):
    """sum R over channels, sign kept, no scaling: (B, C, H, W) -> (B, H, W)."""

    name = "signed"
    signed = True

    def __call__(self, relevance):
        return relevance.sum(1)


class AbsChannelSum(Normaliser):
    """sum |R| over channels, no scaling: (B, C, H, W) -> (B, H, W)."""

    name = "abs"

    def __call__(self, relevance):
        return relevance.abs().sum(1)


class Raw(Normaliser):
    """The attribution as the explainer returned it (x's shape), e.g. a RelEx mask."""

    name = "raw"
    signed = True

    def __call__(self, relevance):
        return relevance


class Percentile(Normaliser):
    """sum |R| over channels, divided by the map's ``q``-th percentile and clipped to [0, 1]
    (the P99 scaling of several saliency papers)."""

    name = "percentile"

    def __init__(self, q: float = 99.0):
        from robex.errors import check_range

        self.q = check_range("percentile q", q, 0.0, 100.0)

    def __call__(self, relevance):
        h = relevance.abs().sum(1)
        scale = torch.quantile(h.flatten(1), self.q / 100.0, dim=1).clamp_min(_TINY)
        return (h / scale.view(-1, 1, 1)).clamp(0.0, 1.0)

    def __repr__(self) -> str:
        return f"Percentile(q={self.q:g})"


class MinMax(Normaliser):
    """sum |R| over channels, then (h - min) / (max - min) per map, in [0, 1] (Grad-CAM masks in the
    RelEx code); an all-constant map becomes zeros."""

    name = "minmax"

    def __call__(self, relevance):
        h = relevance.abs().sum(1)
        flat = h.flatten(1)
        low, high = flat.amin(1).view(-1, 1, 1), flat.amax(1).view(-1, 1, 1)
        return (h - low) / (high - low).clamp_min(_TINY)


DEFAULT = AbsSumOne()
