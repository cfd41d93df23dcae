"""Infidelity (Yeh et al. 2019) with square-removal perturbations: how badly the attribution predicts
the change of the model's output when a square of the image is removed.

For an image x, its attribution phi (x's shape, signed: the explainer's raw attribution) and the
class c, each of ``n_perturb`` perturbations removes one ``square`` x ``square`` patch at a uniform
position: I = M * (x - baseline) with M the patch, so x - I holds the baseline there. With
a = <I, phi> and d = f_c(x) - f_c(x - I) (the model's output for c: logit or softmax),

    infidelity = mean_s (beta a_s - d_s)^2,  beta = sum_s a_s d_s / sum_s a_s^2

(beta: the optimal scaling of the attribution, per image, as Yeh et al.'s code and captum's
``infidelity(normalize=True)`` do; with ``normalize: false`` beta = 1). Lower is better. Batched over
images and perturbations; the patches come from the metric's own seeded generator, so a value is
repeatable and two explainers are scored on the same patches. Checked against captum in
tests/test_infidelity.py.
"""
from __future__ import annotations

import torch

from robex.errors import RobexError
from robex.metrics.base import Metric, MetricInfo, nan_where_not_finite

BASELINES = ("zero", "mean")
OUTPUTS = ("logit", "softmax")


def square_masks(n_images: int, n_perturb: int, height: int, width: int, square: int,
                 generator: torch.Generator) -> torch.Tensor:
    """(n_images, n_perturb, H, W) bool: one square patch each, uniformly placed inside the image."""
    if not 1 <= square <= min(height, width):
        raise RobexError(f"infidelity square={square} must lie in [1, {min(height, width)}] (the image side)")
    tops = torch.randint(0, height - square + 1, (n_images, n_perturb), generator=generator)
    lefts = torch.randint(0, width - square + 1, (n_images, n_perturb), generator=generator)
    rows = torch.arange(height).view(1, 1, height, 1)
    cols = torch.arange(width).view(1, 1, 1, width)
    t, l = tops[..., None, None], lefts[..., None, None]
    return (rows >= t) & (rows < t + square) & (cols >= l) & (cols < l + square)


def infidelity(model, x: torch.Tensor, phi: torch.Tensor, target: torch.Tensor, masks: torch.Tensor,
               baseline: str = "zero", output: str = "logit", normalize: bool = True,
               batch_size: int = 512) -> torch.Tensor:
    """(B,) infidelity of ``phi`` (x's shape) for the perturbations ``masks`` (B, S, H, W)."""
    if phi.shape != x.shape:
        raise RobexError(f"infidelity needs an attribution of the input's shape {tuple(x.shape)}, got "
                         f"{tuple(phi.shape)}: use the explainer's raw attribution (normalise: raw)")
    b, s = masks.shape[:2]
    base = torch.zeros_like(x) if baseline == "zero" else x.mean(dim=(2, 3), keepdim=True).expand_as(x)
    m = masks.unsqueeze(2).to(x.dtype)                      # (B, S, 1, H, W)
    pert = m * (x - base).unsqueeze(1)                       # I, (B, S, C, H, W)
    a = (pert * phi.unsqueeze(1)).flatten(2).sum(2)          # <I, phi>, (B, S)

    def f(inputs, cls):
        out = model(inputs)
        out = out.softmax(1) if output == "softmax" else out
        return out.gather(1, cls.view(-1, 1)).squeeze(1)

    with torch.no_grad():
        f0 = f(x, target)
        flat = (x.unsqueeze(1) - pert).flatten(0, 1)
        cls = target.repeat_interleave(s)
        fp = torch.cat([f(flat[i:i + batch_size], cls[i:i + batch_size]) for i in range(0, len(flat), batch_size)])
    d = f0.unsqueeze(1) - fp.view(b, s)
    a, d = a.double(), d.double()
    if normalize:
        beta = (a * d).sum(1) / (a * a).sum(1)
        beta = torch.where(torch.isfinite(beta), beta, torch.zeros_like(beta))  # phi orthogonal to every I
    else:
        beta = torch.ones(b, dtype=a.dtype, device=a.device)
    return ((beta.unsqueeze(1) * a - d) ** 2).mean(1).float()


class Infidelity(Metric):
    """Yeh et al.'s infidelity with square removal (module docstring). Needs the model, the images,
    the class and the raw attribution (``inputs.extra['attribution']``, x's shape; a (B, H, W) map is
    broadcast over the channels)."""

    info = MetricInfo(kind="model", higher_is_better=False, range=(0.0, float("inf")),
                      citation="Yeh et al. 2019, On the (in)fidelity and sensitivity of explanations")
    uses_attribution = True

    def __init__(self, n_perturb: int = 50, square: int = 4, baseline: str = "zero", output: str = "logit",
                 normalize: bool = True, seed: int = 0, batch_size: int = 512):
        if int(n_perturb) < 2:
            raise RobexError(f"metric infidelity: n_perturb={n_perturb!r} must be >= 2")
        if baseline not in BASELINES or output not in OUTPUTS:
            raise RobexError(f"metric infidelity: baseline in {BASELINES}, output in {OUTPUTS} "
                             f"(got {baseline!r}, {output!r})")
        self.n_perturb, self.square, self.baseline, self.output = int(n_perturb), int(square), baseline, output
        self.normalize, self.seed, self.batch_size = bool(normalize), int(seed), int(batch_size)

    def params(self) -> dict:
        return {"n_perturb": self.n_perturb, "square": self.square, "baseline": self.baseline,
                "output": self.output, "normalize": self.normalize, "seed": self.seed}

    def __call__(self, inputs):
        x, model, target = inputs.x, inputs.model, inputs.target
        if x is None or model is None or target is None:
            raise RobexError("metric infidelity needs the model, the images and the class")
        phi = inputs.extra.get("attribution", inputs.h_clean)
        if phi.dim() == x.dim() - 1:
            phi = phi.unsqueeze(1).expand_as(x)
        gen = torch.Generator().manual_seed(self.seed)
        masks = square_masks(len(x), self.n_perturb, *x.shape[-2:], self.square, gen).to(x.device)
        values = infidelity(model, x, phi.to(x.dtype), target, masks, self.baseline, self.output,
                            self.normalize, self.batch_size)
        return nan_where_not_finite(values, phi)
