"""Targeted explanation manipulation of Dombrowski et al. 2019 ("Explanations can be manipulated
and geometry is to blame"), generic over differentiable explainers, batched over image pairs.

For each image x with a target heatmap h_t, minimise over the parameters theta of a perturbation
model P (x_adv = P(x, theta); Adam started at the identity, the optimiser of
robex/attacks/optimisers.py)

    w_map * MSE(h(x_adv), h_t) + w_out * MSE(softmax(f(x_adv)), softmax(f(x))) + penalty_P(theta)

with every ReLU of f replaced by softplus(beta) while attacking (beta growing geometrically from
``beta_start`` to ``beta_end`` over the iterations; without growth only LRP attacks work), x_adv
projected onto P's budget after every step. The default P (``perturbation: null``) is
Dombrowski's: the image itself, clamped to the valid range [clamp_low, clamp_high], no eps ball;
``perturbation`` may name any model of robex/threats (StAdv's flow, an additive delta, a composite
such as delta+flow). h is the explainer's heatmap for the
class f predicts at x. The returned facts are computed with the original ReLU network:
``label_kept``, ``linf``, and the objective (the map MSE to the target) before and after.

With ``noise_samples`` k, a noise-tunnel explainer (SmoothGrad, Uniform Gradient) is differentiated
through k fresh noise draws per step (:func:`robex.attacks.base.stepping_explainer`) rather than its own count.

``w_map`` is given for 224 x 224 heatmaps (sum to one); for H x W maps it is scaled by
(H W / 224^2)^2, which keeps the balance with the output term the same for every image size.
Targets: ``other_image`` (the task passes h_t, the explanation of another image) or
``blank_square`` (h_t = the clean map with a centred square of a quarter of the image area set to
zero and renormalised, Ghorbani et al.'s objective as used in the paper's appendix A.4.4).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from robex.attacks.base import (AttackResult, check_gradient, check_noise_samples, label_kept, per_sample_max,
                                stepping_explainer)
from robex.attacks.optimisers import AdamStep
from robex.errors import RobexError
from robex.models.transforms import BetaSchedule, softplus_surrogate
from robex.threats import UNCONSTRAINED
from robex.threats.base import PerturbationModel
from robex.utils import progress


def centre_square_mask(height: int, width: int, area_fraction: float = 0.25) -> torch.Tensor:
    """(H, W) float mask of the centred square covering ``area_fraction`` of the image."""
    side = round((area_fraction * height * width) ** 0.5)
    top, left = (height - side) // 2, (width - side) // 2
    m = torch.zeros(height, width)
    m[top:top + side, left:left + side] = 1.0
    return m


def blank_square_target(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The heatmap with no relevance inside the mask, renormalised to sum to one."""
    t = h * (1 - mask)
    return t / t.flatten(1).sum(1).clamp_min(1e-30).view(-1, 1, 1)


class TargetedMapAttack:
    on_explanation = True

    def __init__(self, name: str = "map_targeted", target: str = "other_image", iterations: int = 1500,
                 lr: float = 2e-4, w_map: float = 1e11, w_out: float = 1e6, beta_start: float = 10.0,
                 beta_end: float | None = 100.0, clamp_low: float = 0.0, clamp_high: float = 1.0,
                 square_fraction: float = 0.25, batch_size: int = 16, show_progress: bool = True,
                 perturbation: PerturbationModel | None = None, noise_samples: int | None = None):
        if target not in ("other_image", "blank_square"):
            raise RobexError(f"attack target={target!r}: choose 'other_image' or 'blank_square'")
        if iterations < 0 or lr <= 0:
            raise RobexError("attack iterations >= 0 and lr > 0 required")
        self.name, self.target = name, target
        self.iterations, self.lr = int(iterations), float(lr)
        self.w_map, self.w_out = float(w_map), float(w_out)
        self.schedule = BetaSchedule(beta_start, beta_end)
        self.low, self.high = float(clamp_low), float(clamp_high)
        if perturbation is None:
            if (self.low, self.high) != (0.0, 1.0):
                raise RobexError("attack clamp_low / clamp_high: images live in [0, 1] (normalisation is "
                                 "inside the model); keep 0 and 1")
            perturbation = UNCONSTRAINED  # no ball: only the valid range
        elif not isinstance(perturbation, PerturbationModel):
            raise RobexError(f"attack {name}: perturbation must be a perturbation model (robex/threats), "
                             f"got {type(perturbation).__name__}")
        self.threat = perturbation  # what the rows record (threat, budget, units)
        self.noise_samples = check_noise_samples(name, noise_samples)
        self.square_fraction = float(square_fraction)
        self.batch_size, self.show_progress = int(batch_size), show_progress

    def map_weight(self, height: int, width: int) -> float:
        return self.w_map * (height * width / 224.0 ** 2) ** 2

    def target_maps(self, model, explainer, x, cls, h_target=None) -> torch.Tensor:
        if self.target == "blank_square":
            mask = centre_square_mask(*x.shape[-2:], self.square_fraction).to(x)
            return blank_square_target(explainer(model, x, cls), mask)
        if h_target is None:
            raise RobexError("attack target=other_image needs the target heatmaps (h_target)")
        return h_target

    def __call__(self, model, explainer, x, target, h_target=None) -> AttackResult:
        """``target``: the class to explain (the task passes f's prediction at x)."""
        model.eval()
        h_t = self.target_maps(model, explainer, x, target, h_target)
        out = torch.empty_like(x)
        bar = progress(total=len(x) * self.iterations, desc=f"attack {self.name} on {explainer.name}",
                       enabled=self.show_progress)
        net, swap = softplus_surrogate(model, self.schedule.start)  # a copy: the model is not touched
        stepping = stepping_explainer(explainer, self.noise_samples)
        for s in range(0, len(x), self.batch_size):
            sl = slice(s, s + self.batch_size)
            out[sl] = self._attack_chunk(model, net, swap, stepping, x[sl], target[sl], h_t[sl], bar)
        bar.close()
        kept = label_kept(model, x, out, batch_size=len(x))
        h0, h1 = explainer(model, x, target), explainer(model, out, target)
        facts = {"label_kept": kept, "linf": per_sample_max(out - x).cpu(),
                 "objective_before": -((h0 - h_t) ** 2).flatten(1).mean(1).cpu(),
                 "objective_after": -((h1 - h_t) ** 2).flatten(1).mean(1).cpu()}
        return AttackResult(out, facts)

    def _attack_chunk(self, model, net, swap, explainer, x0, cls, h_t, bar) -> torch.Tensor:
        """Attack one chunk: ``net`` is the softplus surrogate of ``model`` (``swap`` sets its beta)."""
        x0 = x0.detach()
        w_map = self.map_weight(*x0.shape[-2:])
        with torch.no_grad():
            p0 = model(x0).softmax(1)
        threat = self.threat
        params = threat.init(x0)
        opt = AdamStep(self.lr)
        opt.start(params, threat.lrs)
        for it in range(self.iterations):
            swap.set_beta(self.schedule(it, self.iterations))
            with torch.enable_grad():
                leaves = [p.detach().requires_grad_(True) for p in params]
                x_graph = threat.apply(x0, leaves)
            x_adv = x_graph.detach()
            h, _, pullback = explainer.heatmap_with_pullback(net, x_adv, cls)
            # d/dh of the per-sample map MSE, summed over samples (Adam is per-element: exact batching)
            v = 2.0 * w_map * (h - h_t) / h[0].numel()
            grad = pullback(v)
            if it == 0 and bool((h != h_t).any()):
                check_gradient(grad, self.name, explainer.name)
            with torch.enable_grad():
                xa = x_adv.requires_grad_(True)
                p = F.softmax(net(xa), 1)
                out_loss = self.w_out * ((p - p0) ** 2).mean(1).sum()
                (g_out,) = torch.autograd.grad(out_loss, xa)
                # the chain rule through P, and P's own regulariser
                outputs, seeds = [x_graph], [grad + g_out]
                penalty = threat.penalty(leaves).sum()
                if penalty.requires_grad:
                    outputs.append(penalty)
                    seeds.append(torch.ones_like(penalty))
                g_params = torch.autograd.grad(outputs, leaves, seeds, allow_unused=True)
            g_params = [torch.zeros_like(p) if g is None else g for p, g in zip(params, g_params)]
            params = threat.constrain(opt.step(params, [-g for g in g_params]), x0)  # descend the loss
            bar.update(len(x0))
        with torch.no_grad():
            return threat.apply(x0, params)
