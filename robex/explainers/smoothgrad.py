"""SmoothGrad (Smilkov et al. 2017): the gradient averaged over Gaussian-noise copies of the input."""
from __future__ import annotations

import torch

from robex.errors import check_range
from robex.explainers.base import Explainer, input_gradient


class SmoothGrad(Explainer):
    """relevance = mean_k d logit_target / dx (x + n_k), n_k ~ N(0, sigma^2) per pixel.

    ``sigma`` is in pixel units ([0,1] images) when ``relative`` is false, else a fraction of each
    image's (max - min). Images and noise copies are batched together (``max_batch`` inputs per
    pass). The noise comes from torch's global generator (seeded per job)."""

    def __init__(self, name: str = "smoothgrad", n_samples: int = 50, sigma: float = 0.15,
                 relative: bool = True, max_batch: int = 2048):
        super().__init__(name)
        if int(n_samples) < 1:
            from robex.errors import RobexError

            raise RobexError(f"smoothgrad n_samples={n_samples} must be >= 1")
        self.n_samples = int(n_samples)
        self.sigma = check_range("smoothgrad sigma", sigma, 0.0, 10.0)
        self.relative = relative
        self.max_batch = int(max_batch)

    def noise_scale(self, x: torch.Tensor) -> torch.Tensor:
        if not self.relative:
            return torch.full((len(x),), self.sigma, dtype=x.dtype, device=x.device)
        flat = x.detach().flatten(1)
        return self.sigma * (flat.amax(1) - flat.amin(1))

    def attribute(self, model, x, target, create_graph=False):
        n = self.n_samples
        per_chunk = max(1, self.max_batch // n)
        scale = self.noise_scale(x)
        parts = []
        for start in range(0, len(x), per_chunk):
            xc, tc = x[start:start + per_chunk], target[start:start + per_chunk]
            reps = xc.repeat_interleave(n, 0)
            sc = scale[start:start + per_chunk].repeat_interleave(n).view(-1, *([1] * (x.dim() - 1)))
            noisy = reps + torch.randn_like(reps) * sc
            g = input_gradient(model, noisy, tc.repeat_interleave(n), create_graph)
            parts.append(g.view(len(xc), n, *x.shape[1:]).mean(1))
        return torch.cat(parts)
