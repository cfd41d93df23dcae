"""Noise tunnels: an explainer averaged over noisy copies of the input (SmoothGrad, Uniform Gradient).

``NoiseTunnel(base, noise, n_samples)`` computes mean_k base.attribute(x + n_k), n_k drawn by a
noise model (:class:`Gaussian`, :class:`Uniform`); images and noise copies are batched together
(``max_batch`` inputs per pass) and the result is differentiable when the base explainer is.

Randomness: with ``seed`` set, the draws come from the tunnel's own ``torch.Generator`` (seeded on
every call, so a map does not depend on what ran before it); with ``seed: null`` they come from
torch's global generator, which the pipeline seeds per job. The ATEX and AGG-Mean presets use the
global stream (their committed numbers were computed that way).
"""
from __future__ import annotations

import torch

from robex.errors import RobexError, check_range
from robex.explainers.base import Explainer
from robex.explainers.gradient import Gradient


class NoiseModel:
    """Draws noise of a batch's shape; ``scale`` is (B,), one magnitude per copy."""

    def __init__(self, magnitude: float, relative: bool):
        self.magnitude = check_range(f"{type(self).__name__.lower()} noise magnitude", magnitude, 0.0, 10.0)
        self.relative = bool(relative)

    def scale(self, x: torch.Tensor) -> torch.Tensor:
        """Per-image magnitude: absolute (pixel units of [0,1] images), or a fraction of each
        image's (max - min) when ``relative``."""
        if not self.relative:
            return torch.full((len(x),), self.magnitude, dtype=x.dtype, device=x.device)
        flat = x.detach().flatten(1)
        return self.magnitude * (flat.amax(1) - flat.amin(1))

    def draw(self, shape, like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        raise NotImplementedError


class Gaussian(NoiseModel):
    """n ~ N(0, sigma^2) per pixel (SmoothGrad)."""

    def __init__(self, sigma: float = 0.15, relative: bool = True):
        super().__init__(sigma, relative)

    def draw(self, shape, like, generator):
        return torch.randn(shape, generator=generator, dtype=like.dtype, device=like.device)


class Uniform(NoiseModel):
    """n ~ U(-r, r) per pixel (Uniform Gradient, Wang et al. 2020)."""

    def __init__(self, radius: float = 0.2, relative: bool = False):
        super().__init__(radius, relative)

    def draw(self, shape, like, generator):
        return torch.rand(shape, generator=generator, dtype=like.dtype, device=like.device) * 2 - 1


AGGREGATES = ("mean", "mean_abs")


class NoiseTunnel(Explainer):
    """relevance = mean_k base.attribute(x + scale * n_k), k = 1..n_samples (``aggregate: mean``,
    robex's default: the map is then |mean grad|), or mean_k |base.attribute(...)| (``mean_abs``:
    what captum's NoiseTunnel around Saliency computes with Saliency's default abs=True, so the map
    is mean |grad|; the smoothed-explanations paper's maps come from captum)."""

    stochastic = True

    def __init__(self, name: str = "noise_tunnel", base: Explainer | None = None, noise: NoiseModel | None = None,
                 n_samples: int = 50, max_batch: int = 2048, seed: int | None = None, normalise=None,
                 aggregate: str = "mean"):
        super().__init__(name, normalise)
        if int(n_samples) < 1:
            raise RobexError(f"{name} n_samples={n_samples} must be >= 1")
        if aggregate not in AGGREGATES:
            raise RobexError(f"{name} aggregate={aggregate!r}: choose one of {', '.join(AGGREGATES)}")
        self.aggregate = aggregate
        self.base = Gradient() if base is None else base
        self.noise = Gaussian() if noise is None else noise
        self.n_samples = int(n_samples)
        self.max_batch = int(max_batch)
        self.seed = None if seed is None else int(seed)
        self.differentiable = self.base.differentiable

    def _generator(self, x: torch.Tensor) -> torch.Generator | None:
        if self.seed is None:
            return None
        return torch.Generator(device=x.device).manual_seed(self.seed)

    def attribute(self, model, x, target, create_graph=False):
        n = self.n_samples
        per_chunk = max(1, self.max_batch // n)
        scale = self.noise.scale(x)
        gen = self._generator(x)
        parts = []
        for start in range(0, len(x), per_chunk):
            xc, tc = x[start:start + per_chunk], target[start:start + per_chunk]
            reps = xc.repeat_interleave(n, 0)
            sc = scale[start:start + per_chunk].repeat_interleave(n).view(-1, *([1] * (x.dim() - 1)))
            noisy = reps + self.noise.draw(reps.shape, reps, gen) * sc
            r = self.base.attribute(model, noisy, tc.repeat_interleave(n), create_graph)
            if self.aggregate == "mean_abs":
                r = r.abs()
            parts.append(r.view(len(xc), n, *x.shape[1:]).mean(1))
        return torch.cat(parts)


class SmoothGrad(NoiseTunnel):
    """SmoothGrad (Smilkov et al. 2017): the gradient averaged over Gaussian-noise copies; ``sigma``
    in pixel units, or a fraction of each image's (max - min) when ``relative``; ``output``: the
    gradient of the logit or of the softmax probability."""

    def __init__(self, name: str = "smoothgrad", n_samples: int = 50, sigma: float = 0.15,
                 relative: bool = True, max_batch: int = 2048, seed: int | None = None, normalise=None,
                 aggregate: str = "mean", output: str = "logit"):
        super().__init__(name, Gradient(output=output), Gaussian(sigma, relative), n_samples, max_batch, seed,
                         normalise, aggregate)
        self.sigma = self.noise.magnitude


class UniformGradient(NoiseTunnel):
    """Uniform Gradient (Wang et al. 2020, "Smoothed geometry for robust attribution"): the gradient
    averaged over copies with U(-radius, radius) noise per pixel ([0,1] pixel units, 0.2 and 50
    samples in the authors' code). The raw gradient average is returned; the authors' notebook
    multiplies by the input afterwards, robex does not (choose ``times_input`` to do so)."""

    def __init__(self, name: str = "uniform_gradient", n_samples: int = 50, radius: float = 0.2,
                 relative: bool = False, max_batch: int = 2048, seed: int | None = None,
                 times_input: bool = False, normalise=None, aggregate: str = "mean"):
        super().__init__(name, Gradient(), Uniform(radius, relative), n_samples, max_batch, seed, normalise,
                         aggregate)
        self.times_input = bool(times_input)

    def attribute(self, model, x, target, create_graph=False):
        r = super().attribute(model, x, target, create_graph)
        return x * r if self.times_input else r
