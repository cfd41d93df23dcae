"""Explanation manipulation under an additive threat (Ghorbani et al. 2019 style, as used by ATEX),
and its random-noise control.

The attack composes an objective on the normalised map (robex/attacks/objectives.py: ATEX's
untargeted top-k suppression and targeted region attention), a perturbation model with its budget
(the job's threat, robex/threats) and this optimiser:

Each step moves every sample by ``step_size * g / max|g|`` (g = objective gradient, the authors'
normalisation; ``g / ||g||_2`` under an L2 threat), projects onto the threat's ball and [0,1] (see
:class:`robex.threats.Threat`), and rejects, per sample, a step that changes
the predicted label: that sample returns to its previous point and halves its step. The best
label-preserving iterate (highest objective) is returned. All samples of a chunk move together;
gradients of the heatmap come from ``explainer.heatmap_with_pullback``.
"""
from __future__ import annotations

import torch

from robex.attacks.base import AttackResult, check_gradient, label_kept, per_sample_max
from robex.attacks.objectives import MassObjective
from robex.errors import RobexError
from robex.models.transforms import BetaSchedule, softplus_surrogate
from robex.threats import Threat
from robex.utils import progress


class _StepAttack:
    """Shared loop: propose a direction per sample, step, project, reject label changes."""

    on_explanation = True

    def __init__(self, name: str, threat, steps: int, step_size: float, batch_size: int,
                 seed: int, show_progress: bool, surrogate_beta: float | None = None,
                 surrogate_beta_end: float | None = None):
        self.name = name
        self.threat = Threat.from_config(threat)
        if self.threat.kind != "additive":
            raise RobexError(f"attack {name} needs an additive threat (threat.kind=additive), "
                             f"got kind={self.threat.kind}")
        self.steps = int(steps)
        self.step_size = float(step_size)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.show_progress = show_progress
        self.schedule = None if surrogate_beta is None else BetaSchedule(surrogate_beta, surrogate_beta_end)
        if self.steps < 0 or self.step_size <= 0 or self.batch_size < 1:
            raise RobexError(f"attack {name}: steps >= 0, step_size > 0 and batch_size >= 1 required")

    def __call__(self, model, explainer, x, target) -> AttackResult:
        model.eval()
        n = len(x)
        self.scale = self.threat.scale(model)
        self._prepare(model, explainer, x, target)
        self.net, self.handle = model, None
        if self.schedule is not None:
            net, handle = softplus_surrogate(model, self.schedule.start)
            if handle.count:
                self.net, self.handle = net, handle
        out = torch.empty_like(x)
        facts = {k: torch.empty(n) for k in ("linf", "objective_before", "objective_after")}
        facts["label_kept"] = torch.empty(n, dtype=torch.bool)
        bar = progress(total=n * self.steps, desc=f"attack {self.name} {self.threat.norm}={self.threat.budget:g}",
                       enabled=self.show_progress)
        for start in range(0, n, self.batch_size):
            sl = slice(start, min(n, start + self.batch_size))
            res = self._attack_chunk(model, explainer, x[sl], target[sl], sl, bar)
            out[sl] = res.x_adv
            for k, v in res.facts.items():
                facts[k][sl] = v
            facts["label_kept"][sl] = label_kept(model, x[sl], res.x_adv, self.batch_size)
        bar.close()
        return AttackResult(out, facts)

    def _prepare(self, model, explainer, x, target):
        pass

    def _attack_chunk(self, model, explainer, x0, target, sl, bar) -> AttackResult:
        raise NotImplementedError


class ExplanationManipulation(_StepAttack):
    """Manipulate the explanation while keeping the prediction (see the module docstring): the
    ``objective`` (robex/attacks/objectives.py) is what it increases, the threat what it may change."""

    def __init__(self, threat, objective, name: str = "manip_untargeted", steps: int = 200,
                 step_size: float = 0.02, batch_size: int = 64, seed: int = 0, show_progress: bool = True,
                 surrogate_beta: float | None = 10.0, surrogate_beta_end: float | None = None):
        super().__init__(name, threat, steps, step_size, batch_size, seed, show_progress, surrogate_beta,
                         surrogate_beta_end)
        if not isinstance(objective, MassObjective):
            raise RobexError(f"attack {name}: objective must be an explanation objective "
                             f"(robex.attacks.objectives), got {type(objective).__name__}")
        self.objective = objective

    def _prepare(self, model, explainer, x, target):
        if not explainer.differentiable:
            raise RobexError(f"attack {self.name} needs a differentiable explainer; {explainer.name} is not")
        self.objective.prepare(x, *x.shape[-2:])

    def _attack_chunk(self, model, explainer, x0, target, sl, bar) -> AttackResult:
        x0 = x0.detach()
        net, surrogate = self.net, self.handle is not None
        if surrogate:
            self.handle.set_beta(self.schedule.start)
        h0, logits0, _ = explainer.heatmap_with_pullback(net, x0, target)
        if surrogate:
            with torch.no_grad():
                logits0 = model(x0)
        pred0 = logits0.argmax(1)
        mask = self.objective.state(h0, sl)
        obj0 = self.objective.value(h0, mask)
        best_x, best_obj = x0.clone(), obj0.clone()
        step = torch.full((len(x0),), self.step_size, dtype=x0.dtype, device=x0.device)
        view = (-1,) + (1,) * (x0.dim() - 1)
        x, x_base, direction = x0.clone(), x0.clone(), torch.zeros_like(x0)
        for it in range(self.steps + 1):
            if surrogate:
                self.handle.set_beta(self.schedule(it, self.steps + 1))
            h, logits, pullback = explainer.heatmap_with_pullback(net, x, target)
            if surrogate:
                with torch.no_grad():
                    logits = model(x)
            ok = logits.argmax(1) == pred0
            obj = self.objective.value(h, mask)
            better = ok & (obj > best_obj)
            best_x[better], best_obj[better] = x[better], obj[better]
            if it == self.steps:
                break
            h_leaf = h.requires_grad_(True)
            with torch.enable_grad():
                (v,) = torch.autograd.grad(self.objective.value(h_leaf, mask).sum(), h_leaf)
            grad = pullback(v)
            if it == 0:
                check_gradient(grad, self.name, explainer.name)
            new_dir = self.threat.unit_direction(grad)
            # accepted samples step on from x; rejected ones retry from x_base with half the step
            x_base = torch.where(ok.view(view), x, x_base)
            direction = torch.where(ok.view(view), new_dir, direction)
            step = torch.where(ok, step, step * 0.5)
            x = self.threat.project(x_base + step.view(view) * direction, x0, self.scale)
            bar.update(len(x0))
        facts = {"linf": per_sample_max(best_x - x0), "objective_before": obj0,
                 "objective_after": best_obj}
        return AttackResult(best_x, facts)


class RandomNoise(_StepAttack):
    """The control: the same loop with uniform random directions instead of the objective's
    gradient (same threat, step size, step count, projection and label rule); returns the last
    accepted iterate."""

    on_explanation = False

    def __init__(self, threat, name: str = "random", steps: int = 200, step_size: float = 0.02,
                 batch_size: int = 64, seed: int = 0, show_progress: bool = True):
        super().__init__(name, threat, steps, step_size, batch_size, seed, show_progress)

    def _attack_chunk(self, model, explainer, x0, target, sl, bar) -> AttackResult:
        x0 = x0.detach()
        gen = torch.Generator(device=x0.device).manual_seed(self.seed * 1_000_003 + sl.start)
        view = (-1,) + (1,) * (x0.dim() - 1)
        with torch.no_grad():
            pred0 = model(x0).argmax(1)
            x = x0.clone()
            for _ in range(self.steps):
                u = torch.rand(x0.shape, generator=gen, device=x0.device) * 2 - 1
                u = self.threat.unit_direction(u)
                cand = self.threat.project(x + self.step_size * u, x0, self.scale)
                ok = model(cand).argmax(1) == pred0
                x = torch.where(ok.view(view), cand, x)
                bar.update(len(x0))
        nan = torch.full((len(x0),), float("nan"))
        facts = {"linf": per_sample_max(x - x0), "objective_before": nan, "objective_after": nan.clone()}
        return AttackResult(x, facts)
