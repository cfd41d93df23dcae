"""ReColorAdv's colour perturbation (Laidlaw & Feizi 2019, "Functional adversarial attacks"): every
pixel's colour is mapped by one smooth function of colour, the same for every pixel of an image.

The function is a grid over CIELUV colour space (16 x 32 x 32 points along L, u, v in the reference
code the smoothed-explanations paper cites, ``../shared/reference/smoothed.md``), read by trilinear
interpolation. Colours live in the reference code's normalised LUV coordinates, L / 100,
(u + 100) / 200, (v + 100) / 200, so the identity grid holds each point's own coordinates and the
budget (0.06) is an L_inf bound on every grid value's change from the identity. The conversion
RGB <-> CIELUV is kornia's (batched, differentiable); it differs from the reference code's own by
about 3e-4 on [0, 1] images.

Two choices differ from the reference code, both written here so a reader can judge them:
- the grid moves a colour by the interpolated *change* of the grid (identity + interp(params -
  identity)) instead of reading the interpolated value itself. Inside the grid's box the two are
  the same function (the identity is linear, so trilinear interpolation reproduces it); outside the
  box (saturated colours with u > 100 or v < -100, which the reference code clamps to the box's
  faces and so changes even at the identity) robex leaves the colour where it is plus the nearest
  face's change. The identity grid therefore returns the input exactly (up to the LUV round trip,
  about 2e-5), as a perturbation model must.
- the reference code also projects grid values onto [0, 1] and the RGB gamut after every step;
  robex bounds the change by the budget only and clamps the final image to [0, 1].

The smoothness penalty is the reference code's: ``weight * sum`` over grid neighbours along each of
the three axes of sqrt(||change_p - change_q||^2 + 1e-10), each adjacent pair counted from both
sides. Only 3-channel (RGB) images can be recoloured.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from robex.errors import RobexError
from robex.threats.base import PerturbationModel


def rgb_to_unit_luv(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB in [0, 1] -> CIELUV scaled as the reference code does (L/100, (u+100)/200, ...)."""
    from kornia.color import rgb_to_luv

    luv = rgb_to_luv(x)
    return torch.stack((luv[:, 0] / 100.0, (luv[:, 1] + 100.0) / 200.0, (luv[:, 2] + 100.0) / 200.0), 1)


def unit_luv_to_rgb(c: torch.Tensor) -> torch.Tensor:
    from kornia.color import luv_to_rgb

    luv = torch.stack((c[:, 0] * 100.0, c[:, 1] * 200.0 - 100.0, c[:, 2] * 200.0 - 100.0), 1)
    return luv_to_rgb(luv).clamp(0.0, 1.0)


def identity_colour_grid(resolution, like: torch.Tensor) -> torch.Tensor:
    """(1, 3, R_L, R_u, R_v): every grid point holds its own normalised coordinates."""
    axes = [torch.linspace(0.0, 1.0, r, dtype=like.dtype, device=like.device) for r in resolution]
    g = torch.meshgrid(*axes, indexing="ij")
    return torch.stack(g, 0).unsqueeze(0)


def interpolate_grid(grid: torch.Tensor, colours: torch.Tensor) -> torch.Tensor:
    """Trilinear interpolation of a (B, 3, R_L, R_u, R_v) grid at colours (B, 3, H, W) in [0, 1]^3
    (coordinates outside are clamped to the box, as ``padding_mode='border'``); (B, 3, H, W)."""
    b, _, h, w = colours.shape
    # grid_sample's 5-D grid is (x, y, z) = (index along W, H, D) = (v, u, L), in [-1, 1]
    coords = torch.stack((colours[:, 2], colours[:, 1], colours[:, 0]), -1) * 2.0 - 1.0
    out = F.grid_sample(grid, coords.view(b, 1, h, w, 3), mode="bilinear", padding_mode="border",
                        align_corners=True)
    return out.view(b, 3, h, w)


def grid_smoothness(change: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """(B,) the reference code's smoothness of a (B, 3, R_L, R_u, R_v) grid of changes."""
    total = torch.zeros(len(change), dtype=change.dtype, device=change.device)
    for dim in (2, 3, 4):
        d = change.diff(dim=dim)
        total = total + 2.0 * ((d ** 2).sum(1) + eps).sqrt().flatten(1).sum(1)
    return total


class Recolor(PerturbationModel):
    name = "recolor"

    def __init__(self, budget: float = 0.06, smoothness: float = 0.05, resolution=(16, 32, 32),
                 lr: float | None = None):
        if not (budget >= 0 and smoothness >= 0):
            raise RobexError(f"recolor budget={budget!r} and smoothness={smoothness!r} must be >= 0")
        resolution = tuple(int(r) for r in resolution)
        if len(resolution) != 3 or min(resolution) < 2:
            raise RobexError(f"recolor resolution={list(resolution)}: three sizes >= 2 (L, u, v)")
        if lr is not None and not lr > 0:
            raise RobexError(f"recolor lr={lr!r}: must be > 0")
        self.budget, self.smoothness, self.resolution = float(budget), float(smoothness), resolution
        self.lrs = None if lr is None else [float(lr)]

    def _check(self, x0: torch.Tensor) -> None:
        if x0.dim() != 4 or x0.shape[1] != 3:
            raise RobexError(f"recolor needs RGB images (B, 3, H, W); got shape {tuple(x0.shape)}")

    def init(self, x0):
        self._check(x0)
        return [identity_colour_grid(self.resolution, x0).expand(len(x0), -1, -1, -1, -1).clone()]

    def apply(self, x0, params):
        self._check(x0)
        (grid,) = params
        change = grid - identity_colour_grid(self.resolution, grid)
        colours = rgb_to_unit_luv(x0)
        return unit_luv_to_rgb(colours + interpolate_grid(change, colours))

    def constrain(self, params, x0):
        ident = identity_colour_grid(self.resolution, params[0])
        return [ident + (params[0] - ident).clamp(-self.budget, self.budget)]

    def penalty(self, params):
        ident = identity_colour_grid(self.resolution, params[0])
        return self.smoothness * grid_smoothness(params[0] - ident)

    def sample(self, x0, generator=None):
        (ident,) = self.init(x0)
        noise = torch.rand(ident.shape, generator=generator, dtype=ident.dtype, device=ident.device) * 2 - 1
        return [ident + self.budget * noise]

    def columns(self):
        return {"threat": "recolor", "budget": self.budget, "units": "luv_grid"}
