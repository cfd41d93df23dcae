"""MASK: meaningful perturbation (Fong & Vedaldi 2017), the RelEx paper's optimisation baseline.

A low-resolution mask m (side = H / ``mask_scale``, bilinearly upsampled to M at full size, 1 = keep)
blends the image with a blurred copy: Phi(x; M) = x M + blur(x) (1 - M). Adam on m minimises

    lambda1 ||1 - m||_1 + lambda2 TV_beta(m) + p_c(Phi(x; M)),  TV_beta(m) = sum |grad m|^beta

(the smallest blurred region that destroys the class probability), clamping m to [0, 1] after each
step, from m = 1. The attribution is 1 - M (the deleted region is the evidence), the same for every
channel. The authors' RelEx code does not include MASK and the reference note says to follow Fong &
Vedaldi's paper; the defaults are that paper's Sec. 4 values (lambda1 1e-4, lambda2 1e-2, beta 3,
mask 28 x 28 for 224 x 224 images, blur sigma 10 at 224 pixels, scaled with the image side) with
Adam lr 0.1; ``iterations`` (300) is robex's choice, as is leaving out the paper's jitter against
artefacts. Batched over images (independent masks); deterministic. Starting from m = 1, a class
probability saturated at 1 has no gradient and the mask stays put (Adam cannot rescale a 1e-10
gradient): such an image gets an all-zero map.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from robex.errors import RobexError, check_range
from robex.explainers.base import Explainer


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur per channel, reflect padding, kernel radius ceil(3 sigma) (capped by
    the image side)."""
    if sigma <= 0:
        return x
    radius = min(int(math.ceil(3 * sigma)), min(x.shape[-2:]) - 1)
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="reflect"), k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(F.pad(x, (0, 0, radius, radius), mode="reflect"), k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def total_variation(m: torch.Tensor, beta: float) -> torch.Tensor:
    """sum |m_{i+1,j} - m_ij|^beta + |m_{i,j+1} - m_ij|^beta per image, (B,)."""
    dy = (m[..., 1:, :] - m[..., :-1, :]).abs().pow(beta).flatten(1).sum(1)
    dx = (m[..., :, 1:] - m[..., :, :-1]).abs().pow(beta).flatten(1).sum(1)
    return dx + dy


class MeaningfulPerturbation(Explainer):
    """Fong & Vedaldi's blur mask (module docstring)."""

    differentiable = False

    def __init__(self, name: str = "mask", iterations: int = 300, lr: float = 0.1, lambda1: float = 1e-4,
                 lambda2: float = 1e-2, tv_beta: float = 3.0, mask_scale: int = 8, blur_sigma: float = 10.0,
                 blur_reference_side: int = 224, normalise=None):
        super().__init__(name, normalise)
        if int(iterations) < 1:
            raise RobexError(f"{name} iterations={iterations} must be >= 1")
        if int(mask_scale) < 1:
            raise RobexError(f"{name} mask_scale={mask_scale} must be >= 1")
        self.iterations, self.mask_scale = int(iterations), int(mask_scale)
        self.lr = check_range(f"{name} lr", lr, 0.0, 1e3)
        self.lambda1 = check_range(f"{name} lambda1", lambda1, 0.0, 1e6)
        self.lambda2 = check_range(f"{name} lambda2", lambda2, 0.0, 1e6)
        self.tv_beta = check_range(f"{name} tv_beta", tv_beta, 1.0, 10.0)
        self.blur_sigma = check_range(f"{name} blur_sigma", blur_sigma, 0.0, 1e3)
        self.blur_reference_side = int(blur_reference_side)

    def losses(self, model, x, blurred, m, target) -> torch.Tensor:
        """The objective per image for low-resolution masks m (B, 1, h, w)."""
        big = F.interpolate(m, size=x.shape[-2:], mode="bilinear", align_corners=False)
        p = model(x * big + blurred * (1 - big)).softmax(1).gather(1, target.view(-1, 1)).squeeze(1)
        return self.lambda1 * (1 - m).abs().flatten(1).sum(1) + self.lambda2 * total_variation(m, self.tv_beta) + p

    def attribute(self, model, x, target, create_graph=False):
        if create_graph:
            raise RobexError(f"{self.name} is an optimisation, not differentiable: attack another explainer")
        x = x.detach()
        h, w = x.shape[-2:]
        side = (max(1, h // self.mask_scale), max(1, w // self.mask_scale))
        blurred = gaussian_blur(x, self.blur_sigma * h / self.blur_reference_side)
        m = torch.ones(len(x), 1, *side, dtype=x.dtype, device=x.device, requires_grad=True)
        opt = torch.optim.Adam([m], lr=self.lr)
        for _ in range(self.iterations):
            with torch.enable_grad():
                loss = self.losses(model, x, blurred, m, target).sum()
                opt.zero_grad()
                loss.backward()
            opt.step()
            with torch.no_grad():
                m.clamp_(0.0, 1.0)
        big = F.interpolate(m.detach(), size=(h, w), mode="bilinear", align_corners=False)
        return (1 - big).expand_as(x).contiguous()
