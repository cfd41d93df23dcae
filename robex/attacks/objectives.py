"""Objectives of explanation attacks: what an attack increases, as a function of the normalised map h
(sum to one), independent of the perturbation model (robex/threats) and of the optimiser (the
attack's loop). An objective is built from config (``attack.objective``) and used in three steps:

- ``prepare(x, height, width)`` once per call: checks it fits the images and draws any per-image
  state for the whole batch (so a run with fewer images uses a subset of the same state);
- ``state(h0, sl)`` per chunk of images ``sl``, from the clean maps h0 of the chunk;
- ``value(h, state)``: one value per sample, which the attack tries to increase;
- ``current(h, state)`` per step: the state to use at the current map h (the clean state, unless
  the objective follows the current map, as ``TopKSuppression(top_set="current")``).
"""
from __future__ import annotations

import torch

from robex.errors import RobexError


def random_regions(n: int, side: int, size: int, seed: int) -> torch.Tensor:
    """(n, 2) top-left corners of ``size x size`` squares inside a ``side x side`` map, seeded."""
    gen = torch.Generator().manual_seed(int(seed))
    return torch.randint(0, side - size + 1, (n, 2), generator=gen)


def region_masks(corners: torch.Tensor, height: int, width: int, size: int) -> torch.Tensor:
    """(n, H*W) float masks with ones on each square."""
    rows = torch.arange(height).view(1, -1, 1)
    cols = torch.arange(width).view(1, 1, -1)
    r0, c0 = corners[:, 0].view(-1, 1, 1), corners[:, 1].view(-1, 1, 1)
    m = (rows >= r0) & (rows < r0 + size) & (cols >= c0) & (cols < c0 + size)
    return m.flatten(1).float()


def topk_masks(h: torch.Tensor, k: int) -> torch.Tensor:
    """(B, H*W) masks of each map's k largest entries."""
    flat = h.flatten(1)
    m = torch.zeros_like(flat)
    return m.scatter_(1, flat.topk(k, dim=1).indices, 1.0)


class MassObjective:
    """Base: the map's mass on a per-sample mask, signed by ``sign``."""

    sign = 1.0
    kind = ""

    def prepare(self, x: torch.Tensor, height: int, width: int) -> None:
        pass

    def state(self, h0: torch.Tensor, sl: slice) -> torch.Tensor:
        raise NotImplementedError

    def current(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return mask

    def value(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        mass = (h.flatten(1) * mask).sum(1)
        return -mass if self.sign < 0 else mass


class TopKSuppression(MassObjective):
    """Untargeted (ATEX Sec. 2.1 / 4.2, Ghorbani et al.): lower the mass of the top-k pixels:
    value = -sum_{t in T} h_t. ``top_set="clean"``: T is the clean map's top-k, fixed for the whole
    attack (the paper's "in original samples", Ghorbani et al.); ``"current"``: T is the top-k of
    the map at the current iterate, recomputed every step (the ATEX authors' code)."""

    sign = -1.0
    kind = "untargeted"
    TOP_SETS = ("clean", "current")

    def __init__(self, k: int | None = 50, fraction: float | None = None, top_set: str = "clean"):
        if (k is None) == (fraction is None):
            raise RobexError("objective top-k: give k (pixels) or fraction (of the image's pixels), not both")
        if top_set not in self.TOP_SETS:
            raise RobexError(f"objective top_set={top_set!r}: choose one of {', '.join(self.TOP_SETS)}")
        self.top_set = top_set
        self.fraction = None if fraction is None else float(fraction)
        self.k = None if k is None else int(k)

    def prepare(self, x, height, width):
        if self.fraction is not None:  # e.g. the RelEx paper's 1000 of 224 x 224 pixels at any image size
            self.k = max(1, round(self.fraction * height * width))
        if not 1 <= self.k <= height * width:
            raise RobexError(f"objective k={self.k} must be in [1, {height * width}]")

    def state(self, h0, sl):
        return topk_masks(h0, self.k)

    def current(self, h, mask):
        return mask if self.top_set == "clean" else topk_masks(h.detach(), self.k)


class RegionAttention(MassObjective):
    """Targeted (ATEX Sec. 4.2): raise the mass in a seeded random ``size x size`` square per image:
    value = sum_{t in R} h_t."""

    kind = "targeted"

    def __init__(self, size: int = 5, seed: int = 0):
        self.size, self.seed = int(size), int(seed)
        self._masks = None

    def prepare(self, x, height, width):
        if not 1 <= self.size <= min(height, width):
            raise RobexError(f"objective size={self.size} does not fit a {height}x{width} image")
        self._masks = region_masks(random_regions(len(x), min(height, width), self.size, self.seed),
                                   height, width, self.size)
        if height != width:
            raise RobexError("targeted regions need square images")

    def state(self, h0, sl):
        return self._masks[sl].to(h0)
