"""Explanation manipulation under an additive threat (Ghorbani et al. 2019 style, as used by ATEX),
and its random-noise control.

An attack here is objective x threat x optimiser, each a config node: the objective on the
normalised map (robex/attacks/objectives.py: ATEX's untargeted top-k suppression and targeted
region attention), the perturbation model with its budget (the job's threat, robex/threats), and
the optimiser (robex/attacks/optimisers.py; ATEX's: ``step_size * g / max|g|``, the authors'
normalisation, ``g / ||g||_2`` under an L2 threat). After every step x is projected onto the
threat's ball and [0, 1]; a step that changed the predicted label is retried, per sample, from the
previous point with half the step (``on_label_change: halve``). The best label-preserving iterate
(highest objective) is returned (``returns: best``), or the last one (``returns: last``, the ATEX
authors' code). The objective is computed on the explainer's normalised map, or on the map under
another normaliser given as ``normalise`` (the authors' code attacks the unscaled |gradient|:
``robex.normalisers.AbsChannelSum``); the metrics compare maps scale-free either way. All samples
of a chunk move together; gradients of the heatmap come from ``explainer.heatmap_with_pullback``.
"""
from __future__ import annotations

import copy

import torch

from robex.attacks.base import (AttackResult, check_gradient, check_noise_samples, label_kept, per_sample_max,
                                stepping_explainer)
from robex.attacks.objectives import MassObjective
from robex.attacks.optimisers import NormalisedStep, SignStep
from robex.errors import RobexError
from robex.models.transforms import BetaSchedule, softplus_surrogate
from robex.threats import Threat
from robex.utils import progress


class _StepAttack:
    """Shared loop: propose a direction per sample, step, project, reject label changes."""

    on_explanation = True
    OPTIMISERS: tuple = (NormalisedStep,)

    def __init__(self, name: str, threat, steps: int, optimiser, batch_size: int,
                 seed: int, show_progress: bool, surrogate_beta: float | None = None,
                 surrogate_beta_end: float | None = None):
        self.name = name
        self.threat = Threat.from_config(threat)
        if self.threat.kind != "additive":
            raise RobexError(f"attack {name} needs an additive threat (threat.kind=additive), "
                             f"got kind={self.threat.kind}")
        self.steps = int(steps)
        if not isinstance(optimiser, self.OPTIMISERS):
            raise RobexError(f"attack {name}: optimiser must be one of "
                             f"{', '.join('robex.attacks.optimisers.' + o.__name__ for o in self.OPTIMISERS)} "
                             f"(got {type(optimiser).__name__})")
        self.optimiser = optimiser
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.show_progress = show_progress
        self.schedule = None if surrogate_beta is None else BetaSchedule(surrogate_beta, surrogate_beta_end)
        if self.steps < 0 or self.batch_size < 1:
            raise RobexError(f"attack {name}: steps >= 0 and batch_size >= 1 required")

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
    ``objective`` (robex/attacks/objectives.py) is what it increases, the threat what it may change.
    With ``SignStep`` (Ghorbani et al.'s top-k attack) the walk goes on through label-changing
    iterates, and the best label-preserving one is still what is returned."""

    OPTIMISERS = (NormalisedStep, SignStep)

    def __init__(self, threat, objective, optimiser=None, name: str = "manip_untargeted", steps: int = 200,
                 batch_size: int = 64, seed: int = 0, show_progress: bool = True,
                 surrogate_beta: float | None = 10.0, surrogate_beta_end: float | None = None,
                 returns: str = "best", normalise=None, noise_samples: int | None = None):
        super().__init__(name, threat, steps, optimiser or NormalisedStep(0.02, "halve"), batch_size, seed,
                         show_progress, surrogate_beta, surrogate_beta_end)
        self.noise_samples = check_noise_samples(name, noise_samples)
        if returns not in ("best", "last"):
            raise RobexError(f"attack {name}: returns={returns!r}: choose best or last")
        self.returns = returns
        self.normalise = normalise
        if not isinstance(objective, MassObjective):
            raise RobexError(f"attack {name}: objective must be an explanation objective "
                             f"(robex.attacks.objectives), got {type(objective).__name__}")
        self.objective = objective

    def _prepare(self, model, explainer, x, target):
        if not explainer.differentiable:
            raise RobexError(f"attack {self.name} needs a differentiable explainer; {explainer.name} is not")
        self.objective.prepare(x, *x.shape[-2:])

    def _attack_chunk(self, model, explainer, x0, target, sl, bar) -> AttackResult:
        if self.normalise is not None:  # the objective's map: the explainer under another normaliser
            explainer = copy.copy(explainer)
            explainer.normalise = self.normalise
        x0 = x0.detach()
        net, surrogate = self.net, self.handle is not None
        if surrogate:
            self.handle.set_beta(self.schedule.start)
        h0, logits0, _ = explainer.heatmap_with_pullback(net, x0, target)  # the clean map as configured
        stepper = stepping_explainer(explainer, self.noise_samples)
        if surrogate:
            with torch.no_grad():
                logits0 = model(x0)
        pred0 = logits0.argmax(1)
        mask = self.objective.state(h0, sl)
        obj0 = self.objective.value(h0, mask)
        best_x, best_obj = x0.clone(), obj0.clone()  # the iterate returned (best or last)
        self.optimiser.start(x0, self.threat)
        x = x0.clone()
        for it in range(self.steps + 1):
            if surrogate:
                self.handle.set_beta(self.schedule(it, self.steps + 1))
            h, logits, pullback = stepper.heatmap_with_pullback(net, x, target)
            if surrogate:
                with torch.no_grad():
                    logits = model(x)
            ok = logits.argmax(1) == pred0
            mask_now = self.objective.current(h, mask)
            obj = self.objective.value(h, mask_now)
            take = ok & (obj > best_obj) if self.returns == "best" else ok
            best_x[take], best_obj[take] = x[take], obj[take]
            if it == self.steps:
                break
            h_leaf = h.requires_grad_(True)
            with torch.enable_grad():
                (v,) = torch.autograd.grad(self.objective.value(h_leaf, mask_now).sum(), h_leaf)
            grad = pullback(v)
            if it == 0:
                check_gradient(grad, self.name, explainer.name)
            x = self.threat.project(self.optimiser.step(x, grad, ok), x0, self.scale)
            bar.update(len(x0))
        facts = {"linf": per_sample_max(best_x - x0), "objective_before": obj0,
                 "objective_after": best_obj}
        return AttackResult(best_x, facts)


class RandomNoise(_StepAttack):
    """The control: the same threat and optimiser with uniform random directions instead of the
    objective's gradient (same step size, step count, projection and label rule; a step that
    changes the label is dropped: ``on_label_change: reject``); returns the last accepted iterate."""

    on_explanation = False

    def __init__(self, threat, optimiser=None, name: str = "random", steps: int = 200,
                 batch_size: int = 64, seed: int = 0, show_progress: bool = True):
        super().__init__(name, threat, steps, optimiser or NormalisedStep(0.02, "reject"), batch_size, seed,
                         show_progress)

    def _attack_chunk(self, model, explainer, x0, target, sl, bar) -> AttackResult:
        x0 = x0.detach()
        gen = torch.Generator(device=x0.device).manual_seed(self.seed * 1_000_003 + sl.start)
        self.optimiser.start(x0, self.threat)
        with torch.no_grad():
            pred0 = model(x0).argmax(1)
            x, ok = x0.clone(), torch.ones(len(x0), dtype=torch.bool, device=x0.device)
            for _ in range(self.steps):
                u = torch.rand(x0.shape, generator=gen, device=x0.device) * 2 - 1
                x = self.threat.project(self.optimiser.step(x, u, ok), x0, self.scale)
                ok = model(x).argmax(1) == pred0
                bar.update(len(x0))
            x = self.optimiser.last_accepted(x, ok)
        nan = torch.full((len(x0),), float("nan"))
        facts = {"linf": per_sample_max(x - x0), "objective_before": nan, "objective_after": nan.clone()}
        return AttackResult(x, facts)
