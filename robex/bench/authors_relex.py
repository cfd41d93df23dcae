"""The RelEx authors' mask optimisation, re-implemented by robex in plain torch from the procedure in
../shared/reference/relex.md (not their code): the yardstick of `make bench`'s RelEx ratio (issue 10:
robex batched over images x copies against the authors' per-image loop) and an independent
reference that robex's :class:`~robex.explainers.relex.RelEx` is tested against
(tests/test_relex.py).

The authors' way of computing is kept, since it is what the ratio measures: one image at a time, in
the model's normalised input space; every iteration draws B noisy copies z_b = z + N(0, (sigma *
(max z - min z))^2), runs the masked copies z_b * m and the complements z_b * (1 - m) through the
network in two separate passes of B, takes the per-copy losses -log p_c(z_b m) - lambda2 log(1 -
p_c(z_b (1 - m)) + 1e-7) + lambda1 ||m||_1, back-propagates their mean, divides the mask's gradient
by its L2 norm and takes a ``torch.optim.SGD`` step (momentum), then clamps m to [0, 1]. The random
draws follow robex's convention (the mask's start from a generator seeded ``seed``, the noise from
one seeded ``seed + 1``, a (B, C, H, W) standard normal per iteration) so the two can be compared
mask for mask.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from robex.models.normalize import Normalize


def split_normalisation(model: nn.Module) -> tuple[nn.Module | None, nn.Module]:
    """(the model's leading Normalize layer or None, the rest of the model): the authors' network
    takes normalised inputs, so the mask multiplies those."""
    if isinstance(model, nn.Sequential) and len(model) and isinstance(model[0], Normalize):
        return model[0], model[1:]
    return None, model


def authors_relex(model: nn.Module, x: torch.Tensor, target: torch.Tensor, iterations: int = 50,
                  n_noise: int = 50, sigma: float = 0.1, lambda1: float = 1e-4, lambda2: float = 1.0,
                  lr: float = 0.1, momentum: float = 0.99, init_max: float = 0.01, seed: int = 0) -> torch.Tensor:
    """Masks (B, C, H, W) in [0, 1] of the images ``x`` (pixels in [0, 1]) for the classes ``target``,
    one image after another."""
    norm, net = split_normalisation(model)
    masks = []
    for i in range(len(x)):
        z = norm(x[i:i + 1]) if norm is not None else x[i:i + 1]
        z = z.detach()
        std = sigma * (z.max() - z.min())
        gen = torch.Generator(device=x.device).manual_seed(seed)
        m = (torch.rand((1, *z.shape[1:]), generator=gen, dtype=z.dtype, device=z.device) * init_max)
        m.requires_grad_(True)
        opt = torch.optim.SGD([m], lr=lr, momentum=momentum)
        noise_gen = torch.Generator(device=x.device).manual_seed(seed + 1)
        cls = target[i:i + 1].expand(n_noise)
        for _ in range(iterations):
            noise = torch.randn((n_noise, *z.shape[1:]), generator=noise_gen, dtype=z.dtype, device=z.device)
            batch = z + noise * std
            p_fore = F.softmax(net(batch * m), 1).gather(1, cls.view(-1, 1)).squeeze(1)
            p_back = F.softmax(net(batch * (1 - m)), 1).gather(1, cls.view(-1, 1)).squeeze(1)
            losses = -torch.log(p_fore) - lambda2 * torch.log(1 - p_back + 1e-7) + lambda1 * m.abs().sum()
            opt.zero_grad()
            losses.mean().backward()
            with torch.no_grad():
                m.grad.mul_(1 / m.grad.norm().clamp_min(1e-12))
            opt.step()
            with torch.no_grad():
                m.clamp_(0.0, 1.0)
        masks.append(m.detach())
    return torch.cat(masks)
