"""The ATEX authors' attack step and fine-tuning step, re-implemented by robex in plain torch from the
procedure described in ../shared/reference/atex.md (not their code): the yardstick of `make bench`'s
side-by-side ratios (issue 14) and the reference that `attack=manip_untargeted_paper` is tested
against (tests/test_authors_reference.py).

The authors' way of computing is kept, since it is what the ratios measure: the map by autograd
double backprop (``create_graph``), one batch of 100 at a time, the top-50 set of the CURRENT map
each step, the step ``0.02 * g / max|g|`` per sample, a prediction-changing step undone (x kept),
the last iterate returned; ATEX fine-tuning with the student's SmoothGrad (10 copies, sigma = eps),
the two positions {x - d, x} along it (d scaled to max |entry| = 4 eps), 8 perpendicular samples per
position with u ~ U(-4 eps, 4 eps), the KL loss to the teacher at temperature 4, and 4 Adam steps
per batch. One of the code's defects is an option, off by default: the top-k objective's
broadcasting (each image masked with every image's threshold, a B x B x H x W product). Its
projection's sign bug is not reproduced (robex and this reference both project exactly). The
objective is the mass on the unscaled |gradient| (the code), or on the map normalised to sum one
(``normalised_map=True``: the paper's Sec. 2.1, robex's own attacks).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def abs_gradient(model, x: torch.Tensor, y: torch.Tensor, normalised: bool = False
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """(|d logit_y / dx| with channels summed, flattened to (B, H*W), divided by its L1 norm per
    image when ``normalised``; logits), differentiable in x (create_graph)."""
    logits = model(x)
    (g,) = torch.autograd.grad(logits.gather(1, y.view(-1, 1)).sum(), x, create_graph=True)
    a = g.abs().sum(1).flatten(1)
    return (a / a.sum(1, keepdim=True).clamp_min(1e-12) if normalised else a), logits


def topk_mass(h: torch.Tensor, k: int, broadcast_bug: bool = False) -> torch.Tensor:
    """Sum over images of each map's mass on its own current top-k pixels; with ``broadcast_bug``
    the code's version: every map thresholded at every image's k-th value, all summed."""
    thr = h.detach().topk(k, dim=1).values[:, -1]
    if broadcast_bug:
        return (h.unsqueeze(1) * (h.unsqueeze(1) >= thr.view(1, -1, 1))).sum()
    return (h * (h >= thr.view(-1, 1))).sum()


def authors_untargeted_attack(model, x0: torch.Tensor, y: torch.Tensor, eps: float, steps: int = 200,
                              k: int = 50, step_size: float = 0.02, batch_size: int = 100,
                              broadcast_bug: bool = False, normalised_map: bool = False,
                              near_ties: list | None = None) -> torch.Tensor:
    """The authors' untargeted top-k attack (see the module docstring); returns the last iterates.
    ``near_ties``, a list, receives one bool per image: True when at some step its map's k-th and
    (k+1)-th values were within 1e-6 of each other (relative), so float rounding alone decides which
    pixel is in the top-k set and two exact implementations may part there."""
    out, tied = [], []
    for start in range(0, len(x0), batch_size):
        xb0, yb = x0[start:start + batch_size].detach(), y[start:start + batch_size]
        with torch.no_grad():
            pred0 = model(xb0).argmax(1)
        x = xb0.clone()
        tie = torch.zeros(len(xb0), dtype=torch.bool)
        for _ in range(steps):
            xr = x.clone().requires_grad_(True)
            h, _ = abs_gradient(model, xr, yb, normalised_map)
            if near_ties is not None:  # off the timed path of make bench
                top = h.detach().topk(k + 1, dim=1).values
                tie |= (top[:, k - 1] - top[:, k]) <= 1e-6 * top[:, k - 1].abs()
            (g,) = torch.autograd.grad(-topk_mass(h, k, broadcast_bug), xr)
            scale = g.flatten(1).abs().amax(1).clamp_min(1e-12).view(-1, 1, 1, 1)
            with torch.no_grad():
                x_new = torch.minimum(torch.maximum(x + step_size * g / scale, xb0 - eps), xb0 + eps).clamp(0, 1)
                kept = model(x_new).argmax(1) == pred0
                x = torch.where(kept.view(-1, 1, 1, 1), x_new, x)
        out.append(x)
        tied.append(tie)
    if near_ties is not None:
        near_ties.extend(torch.cat(tied).tolist())
    return torch.cat(out)


def authors_atex_batch(teacher, student, optimiser, x: torch.Tensor, y: torch.Tensor, eps: float,
                       n_sg: int = 10, n_perp: int = 8, inner_steps: int = 4, temperature: float = 4.0,
                       generator: torch.Generator | None = None) -> int:
    """One batch of the authors' ATEX fine-tuning; returns the number of student samples it
    forward-backwarded (SmoothGrad copies + inner steps x perpendicular samples)."""
    mag = 4 * eps
    xs = x.detach().repeat(n_sg, 1, 1, 1)
    xs = (xs + eps * torch.randn(xs.shape, generator=generator)).requires_grad_(True)
    logits = student(xs)
    (g,) = torch.autograd.grad(logits.gather(1, y.repeat(n_sg).view(-1, 1)).sum(), xs)
    phi = g.view(n_sg, *x.shape).mean(0)
    phi = mag * phi / phi.flatten(1).abs().amax(1).clamp_min(1e-12).view(-1, 1, 1, 1)
    along = torch.cat([x - phi, x])  # the code's two positions
    d = torch.cat([phi, phi])
    u = (torch.rand((n_perp,) + along.shape, generator=generator) * 2 - 1) * mag
    flat_d = d.flatten(1)
    coef = (u.flatten(2) * flat_d).sum(2) / (flat_d * flat_d).sum(1).clamp_min(1e-12)
    perp = u - coef.view(n_perp, -1, 1, 1, 1) * d
    xp = (along.unsqueeze(0) + perp).flatten(0, 1)
    with torch.no_grad():
        target = F.softmax(teacher(along) / temperature, 1).repeat(n_perp, 1)
    for _ in range(inner_steps):
        optimiser.zero_grad()
        loss = F.kl_div(F.log_softmax(student(xp), 1), target, reduction="batchmean")
        loss.backward()
        optimiser.step()
    return n_sg * len(x) + inner_steps * len(xp)
