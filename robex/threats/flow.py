"""StAdv's spatial perturbation (Xiao et al. 2018, "Spatially transformed adversarial examples"):
every output pixel is read, by bilinear interpolation, from its own position moved by a flow vector.

Parameterised as in the reference code the smoothed-explanations paper cites (see
``../shared/reference/smoothed.md``): the flow f (B, H, W, 2) is an offset in ``grid_sample``
coordinates ([-1, 1] across the image, (x, y) order, ``align_corners=False``), the identity at
f = 0, sampled with ``padding_mode='border'``; the budget is an L_inf bound on f (0.05: 5% of the
half-width, 0.8 pixel on a 32-pixel image); the smoothness penalty is Xiao et al.'s Eq. (4),
``weight * sum_p sum_{q in N(p)} sqrt(||f_p - f_q||^2 + 1e-10)`` over the 4-neighbours inside the
image (each adjacent pair counted from both sides, as the double sum does).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from robex.errors import RobexError
from robex.threats.base import PerturbationModel


def identity_grid(height: int, width: int, like: torch.Tensor) -> torch.Tensor:
    """(1, H, W, 2) grid_sample coordinates of the pixel centres (align_corners=False)."""
    ys = (torch.arange(height, dtype=like.dtype, device=like.device) * 2 + 1) / height - 1
    xs = (torch.arange(width, dtype=like.dtype, device=like.device) * 2 + 1) / width - 1
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack((gx, gy), dim=-1).unsqueeze(0)


def flow_smoothness(f: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """(B,) Xiao et al.'s Eq. (4) for flows (B, H, W, 2): every ordered 4-neighbour pair."""
    dy = ((f[:, 1:] - f[:, :-1]) ** 2).sum(-1) + eps   # vertical pairs
    dx = ((f[:, :, 1:] - f[:, :, :-1]) ** 2).sum(-1) + eps  # horizontal pairs
    return 2.0 * (dy.sqrt().flatten(1).sum(1) + dx.sqrt().flatten(1).sum(1))


class Flow(PerturbationModel):
    name = "flow"

    def __init__(self, budget: float = 0.05, smoothness: float = 0.05, lr: float | None = None):
        if not (budget >= 0 and smoothness >= 0):
            raise RobexError(f"flow budget={budget!r} and smoothness={smoothness!r} must be >= 0")
        if lr is not None and not lr > 0:
            raise RobexError(f"flow lr={lr!r}: must be > 0")
        self.budget, self.smoothness = float(budget), float(smoothness)
        self.lrs = None if lr is None else [float(lr)]

    def init(self, x0):
        b, _, h, w = x0.shape
        return [torch.zeros(b, h, w, 2, dtype=x0.dtype, device=x0.device)]

    def apply(self, x0, params):
        (f,) = params
        grid = identity_grid(*x0.shape[-2:], x0) + f
        return F.grid_sample(x0, grid, mode="bilinear", padding_mode="border", align_corners=False)

    def constrain(self, params, x0):
        return [params[0].clamp(-self.budget, self.budget)]

    def penalty(self, params):
        return self.smoothness * flow_smoothness(params[0])

    def sample(self, x0, generator=None):
        (f,) = self.init(x0)
        return [self.budget * (torch.rand(f.shape, generator=generator, dtype=f.dtype, device=f.device) * 2 - 1)]

    def columns(self):
        return {"threat": "flow", "budget": self.budget, "units": "grid"}
