"""ATEX: adversarial training on explanations (paper Eq. 4-6), a distillation fine-tuning.

For each training seed x (label y):
  phi    = SmoothGrad of the frozen teacher f at x for y (Eq. 5 uses phi(f, x)), computed once per
           image and reused by every iteration;
  x_i    = x + delta1 * phi / ||phi||            delta1 ~ U(-Delta1, Delta1), ``n_along`` per seed
  x_p    = x_i + delta2 * phi_perp / ||phi_perp||   delta2 ~ U(-Delta2, Delta2), ``n_perp`` per x_i,
           phi_perp = u - phi <u, phi> / ||phi||^2, u ~ U(-1, 1) per pixel;
  J      = KL(f(x)/T || g(x)) + alpha * sum_{i,p} KL(f(x_i)/T || g(x_p))    (Eq. 4), averaged over
           the seeds of a batch; f(.)/T is the teacher's softmax at temperature T.

Delta1 = Delta2 = ``delta_scale`` x ``delta`` (delta: the defense's own eps1, recorded as ``budget``). ``norm`` chooses how the
directions are scaled before multiplying by delta1 / delta2: ``linf`` (max |entry| = 1, so Delta is
in the attack's pixel units) or ``l2`` (the paper's literal formula). SmoothGrad's sigma defaults to
``delta`` (the code's sigma = eps). Every choice is listed, with its source, in the presets' header
comments.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from robex.errors import RobexError, check_range
from robex.explainers.noise_tunnel import SmoothGrad
from robex.trainers.fit import fit
from robex.trainers.optim import optimiser_spec
from robex.utils import batches, progress


def unit_direction(d: torch.Tensor, norm: str) -> torch.Tensor:
    """Scale each sample of d (B, ...) to unit L_inf or L2 norm."""
    flat = d.flatten(1)
    size = flat.abs().amax(1) if norm == "linf" else flat.norm(dim=1)
    return d / size.clamp_min(1e-30).view(-1, *([1] * (d.dim() - 1)))


def perpendicular(u: torch.Tensor, phi: torch.Tensor, image_dims: int = 3) -> torch.Tensor:
    """u - phi <u, phi> / ||phi||^2, inner products over the last ``image_dims`` dims (C, H, W);
    phi broadcasts against u."""
    dims = tuple(range(-image_dims, 0))
    coef = (u * phi).sum(dims, keepdim=True) / (phi * phi).sum(dims, keepdim=True).clamp_min(1e-30)
    return u - coef * phi


class ATEX:
    """The defense: ``iterations`` stages, each one pass of :func:`robex.trainers.fit.fit` with
    :class:`ATEXLoss` over the training seeds, starting from the trained model (the teacher)."""

    start = "trained"

    def __init__(self, name: str = "atex", delta: float = 0.08, delta_scale: float = 1.0, iterations: int = 1,
                 n_along: int = 2,
                 n_perp: int = 8, alpha: float = 1.0, temperature: float = 4.0, sg_samples: int = 10,
                 sg_sigma: float | None = None, norm: str = "linf", optimiser=None,
                 batch_size: int = 100, micro_batch: int = 200, seed: int = 0, show_progress: bool = True):
        self.name = name
        self.budget = float(delta)  # the defense's own magnitude, the rows' defense_budget
        self.micro_batch = int(micro_batch)
        self.delta = check_range("atex delta", delta, 0.0, 1.0) * check_range("atex delta_scale", delta_scale, 0.0, 100.0)
        self.stages = int(iterations)
        if self.stages < 0 or n_along < 1 or n_perp < 1 or batch_size < 1:
            raise RobexError("atex: iterations >= 0, n_along >= 1, n_perp >= 1, batch_size >= 1 required")
        if norm not in ("linf", "l2"):
            raise RobexError(f"atex norm={norm!r}: choose 'linf' or 'l2'")
        self.n_along, self.n_perp = int(n_along), int(n_perp)
        self.alpha, self.temperature = float(alpha), float(temperature)
        self.sg = SmoothGrad(n_samples=sg_samples, relative=False, max_batch=micro_batch,
                             sigma=float(delta) if sg_sigma is None else sg_sigma)
        self.norm, self.optimiser, self.batch_size = norm, optimiser_spec(optimiser), int(batch_size)
        self.seed, self.show_progress = int(seed), show_progress
        self._directions: dict[int, torch.Tensor] = {}

    # -- Eq. 5-6 sampling ------------------------------------------------------------------------
    def teacher_directions(self, teacher, x, y) -> torch.Tensor:
        """Unit SmoothGrad directions of the teacher for every training image (computed once)."""
        key = id(teacher)
        if key not in self._directions:
            gen_state = torch.get_rng_state()
            torch.manual_seed(self.seed + 7919)
            bar = progress(total=len(x), desc="atex: teacher SmoothGrad", enabled=self.show_progress)
            out = torch.empty_like(x)
            device = next(teacher.parameters()).device
            for s in batches(len(x), 200):
                out[s] = unit_direction(self.sg.attribute(teacher, x[s].to(device), y[s].to(device)), self.norm).cpu()
                bar.update(s.stop - s.start)
            bar.close()
            torch.set_rng_state(gen_state)
            self._directions = {key: out}
        return self._directions[key]

    def samples(self, x: torch.Tensor, direction: torch.Tensor, gen: torch.Generator | None = None):
        """(x_i, x_p): x_i (B, n_along, C, H, W) along the direction, x_p (B, n_along, n_perp, C, H, W)
        perpendicular to it around each x_i."""
        b = len(x)
        shape = x.shape[1:]
        kw = {"generator": gen, "device": x.device, "dtype": x.dtype}
        d1 = (torch.rand(b, self.n_along, **kw) * 2 - 1) * self.delta
        x_i = x[:, None] + d1.view(b, self.n_along, 1, 1, 1) * direction[:, None]
        u = torch.rand(b, self.n_along, self.n_perp, *shape, **kw) * 2 - 1
        perp = perpendicular(u, direction[:, None, None])
        perp = unit_direction(perp.reshape(-1, *shape), self.norm).view_as(perp)
        d2 = (torch.rand(b, self.n_along, self.n_perp, **kw) * 2 - 1) * self.delta
        x_p = x_i[:, :, None] + d2.view(b, self.n_along, self.n_perp, 1, 1, 1) * perp
        return x_i, x_p

    # -- one ATEX iteration = one pass over the training seeds -----------------------------------
    def apply_stage(self, stage: int, teacher, model, data) -> dict:
        teacher.eval()
        for p in teacher.parameters():
            p.requires_grad_(False)
        x_all, y_all = data.train_x, data.train_y
        directions = self.teacher_directions(teacher, x_all, y_all)
        info = fit(model, ATEXLoss(self, teacher, directions), x_all, y_all, epochs=1,
                   batch_size=self.batch_size, optimiser=self.optimiser,
                   generator=torch.Generator().manual_seed(self.seed * 1000 + stage),
                   desc=f"atex iteration {stage}", show_progress=self.show_progress)
        return {"stage": stage, "loss": info["loss"]}


class ATEXLoss:
    """Eq. 4 as written, for :func:`robex.trainers.fit.fit`: per seed KL(f(x) || g(x)) + alpha * sum
    over its x_p of KL(f(x_i) || g(x_p)), averaged over the B seeds of the batch; the samples
    x_i, x_p are drawn from the run's generator around each seed's teacher direction. Computed in
    micro-batches with gradient accumulation (the same sum)."""

    def __init__(self, atex: ATEX, teacher, directions: torch.Tensor):
        self.atex, self.teacher, self.directions = atex, teacher, directions

    def _chunked(self, model, x):
        return torch.cat([model(x[c]) for c in batches(len(x), self.atex.micro_batch)])

    def __call__(self, model, x, y, idx, generator) -> float:
        a = self.atex
        device = x.device
        d = self.directions[idx].to(device)
        x_i, x_p = a.samples(x, d, generator)
        shape = x.shape[1:]
        inputs = torch.cat([x, x_p.reshape(-1, *shape)])
        with torch.no_grad():
            soft = F.softmax(self._chunked(self.teacher, torch.cat([x, x_i.reshape(-1, *shape)])) / a.temperature, dim=1)
        targets = torch.cat([soft[: len(x)], soft[len(x):].repeat_interleave(a.n_perp, 0)])
        n_p = len(inputs) - len(x)
        weights = torch.cat([torch.full((len(x),), 1.0 / len(x)),
                             torch.full((n_p,), a.alpha / len(x))]).to(device)
        loss = 0.0
        for c in batches(len(inputs), a.micro_batch):
            logq = F.log_softmax(model(inputs[c]), dim=1)
            p = targets[c]
            kl = (p * (p.clamp_min(1e-30).log() - logq)).sum(1)
            part = (weights[c] * kl).sum()
            part.backward()
            loss += part.item()
        return loss


class ATEXAuthors:
    """``defense=atex_authors``: ATEX as the authors' code runs it (../shared/reference/atex.md), beside
    :class:`ATEX`, the paper as written. Per batch of seeds x (label y):

      phi   = SmoothGrad of the STUDENT g at x for y (``sg_samples`` copies, sigma = ``delta``, the
              mean of the logit's gradients), recomputed every batch and scaled to max |entry| = MAG;
      x_i   in {x - phi, x} (the code's two positions along phi);
      x_p   = x_i + (u - phi <u, phi> / ||phi||^2), u ~ U(-MAG, MAG) per pixel, ``n_perp`` per x_i,
              no clamping to [0, 1];
      J     = KL(f(x_i)/T || g(x_p)) averaged over all x_p (the second term of Eq. 4 only), T = 4;

    with MAG = ``delta_scale`` x ``delta`` (4 eps), ``inner_steps`` Adam steps on each batch's
    samples (4), ``epochs`` passes over the training seeds in one stage with one optimiser (2).
    The samples are drawn in the order of robex/bench/authors_atex.py (the SmoothGrad noise, then
    u), and tests/test_atex.py checks one batch against it."""

    start = "trained"

    def __init__(self, name: str = "atex_authors", delta: float = 0.08, delta_scale: float = 4.0,
                 iterations: int = 1, epochs: int = 2, inner_steps: int = 4, n_perp: int = 8,
                 temperature: float = 4.0, sg_samples: int = 10, sg_sigma: float | None = None, optimiser=None,
                 batch_size: int = 100, micro_batch: int = 400, seed: int = 0, show_progress: bool = True):
        self.name = name
        self.budget = float(delta)
        self.mag = check_range("atex_authors delta", delta, 0.0, 1.0) * check_range(
            "atex_authors delta_scale", delta_scale, 0.0, 100.0)
        self.stages, self.epochs, self.inner_steps = int(iterations), int(epochs), int(inner_steps)
        if self.stages < 0 or self.epochs < 1 or self.inner_steps < 1 or n_perp < 1 or sg_samples < 1 \
                or batch_size < 1 or micro_batch < 1:
            raise RobexError("atex_authors: iterations >= 0, epochs, inner_steps, n_perp, sg_samples, batch_size "
                             "and micro_batch >= 1 required")
        self.n_perp, self.n_sg = int(n_perp), int(sg_samples)
        self.temperature = check_range("atex_authors temperature", temperature, 1e-6, 1e6)
        self.sg_sigma = float(delta) if sg_sigma is None else check_range("atex_authors sg_sigma", sg_sigma, 0.0, 10.0)
        self.optimiser, self.batch_size, self.micro_batch = optimiser_spec(optimiser), int(batch_size), int(micro_batch)
        self.seed, self.show_progress = int(seed), show_progress

    def apply_stage(self, stage: int, teacher, model, data) -> dict:
        teacher.eval()
        for p in teacher.parameters():
            p.requires_grad_(False)
        info = fit(model, ATEXAuthorsLoss(self, teacher), data.train_x, data.train_y, epochs=self.epochs,
                   batch_size=self.batch_size, optimiser=self.optimiser, inner_steps=self.inner_steps,
                   generator=torch.Generator().manual_seed(self.seed * 1000 + stage),
                   desc=f"atex_authors iteration {stage}", show_progress=self.show_progress)
        return {"stage": stage, "loss": info["loss"]}


class ATEXAuthorsLoss:
    """The authors' ATEX objective for :func:`robex.trainers.fit.fit` with ``inner_steps``:
    :meth:`prepare` draws a batch's samples and teacher targets once, the returned step computes the
    KL (in micro-batches, gradients accumulated) for every optimiser step on them."""

    def __init__(self, atex: ATEXAuthors, teacher):
        self.atex, self.teacher = atex, teacher

    def samples(self, model, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None):
        """(x_i (2B, C, H, W), x_p (n_perp * 2B, C, H, W)): the code's positions along the student's
        SmoothGrad and the perpendicular samples around them."""
        a = self.atex
        xs = x.detach().repeat(a.n_sg, 1, 1, 1)
        xs = xs + a.sg_sigma * torch.randn(xs.shape, generator=generator).to(x.device)
        with torch.enable_grad():
            xs.requires_grad_(True)
            logits = torch.cat([model(xs[c]) for c in batches(len(xs), a.micro_batch)])
            (g,) = torch.autograd.grad(logits.gather(1, y.repeat(a.n_sg).view(-1, 1)).sum(), xs)
        phi = a.mag * unit_direction(g.view(a.n_sg, *x.shape).mean(0), "linf")
        x_i = torch.cat([x - phi, x])
        d = torch.cat([phi, phi])
        u = ((torch.rand((a.n_perp, *x_i.shape), generator=generator) * 2 - 1) * a.mag).to(x.device)
        x_p = (x_i.unsqueeze(0) + perpendicular(u, d)).flatten(0, 1)
        return x_i.detach(), x_p.detach()

    def prepare(self, model, x, y, idx, generator):
        a = self.atex
        x_i, x_p = self.samples(model, x, y, generator)
        with torch.no_grad():
            target = F.softmax(self.teacher(x_i) / a.temperature, dim=1).repeat(a.n_perp, 1)

        def step(model) -> float:
            total = 0.0
            for c in batches(len(x_p), a.micro_batch):
                part = F.kl_div(F.log_softmax(model(x_p[c]), dim=1), target[c], reduction="sum") / len(x_p)
                part.backward()
                total += part.item()
            return total

        return step
