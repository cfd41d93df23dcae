"""What every attack returns, the one label rule, and the facts every attack reports.

Every attack has a ``threat`` (:class:`robex.threats.Threat`: what it may change and by how much,
recorded in every row) and says whether it optimises against an explainer (``on_explanation``: the
row's ``attacked_explainer`` column then names the job's explainer)."""
from __future__ import annotations

import copy

from dataclasses import dataclass, field

import torch

from robex.errors import RobexError
from robex.threats import NONE


@dataclass
class AttackResult:
    """The perturbed batch and per-sample facts about the attack (each a (B,) tensor):
    ``label_kept`` (prediction unchanged), ``linf`` (max |x_adv - x|), ``objective_before`` and
    ``objective_after`` (the attack's own objective, which it tries to increase; NaN where the
    attack has none)."""

    x_adv: torch.Tensor
    facts: dict[str, torch.Tensor] = field(default_factory=dict)

    def summary(self) -> dict[str, float]:
        return {k: v.float().mean().item() for k, v in self.facts.items()}


def label_kept(model, x0: torch.Tensor, x_adv: torch.Tensor, batch_size: int = 200) -> torch.Tensor:
    """THE label rule of every attack: (B,) bool, the model's prediction at x_adv equals its
    prediction at x0. Always measured on the model itself, never on an attack's surrogate."""
    out = []
    with torch.no_grad():
        for s in range(0, len(x0), batch_size):
            out.append(model(x_adv[s:s + batch_size]).argmax(1) == model(x0[s:s + batch_size]).argmax(1))
    return torch.cat(out).cpu()


def check_gradient(grad: torch.Tensor, attack: str, explainer: str) -> None:
    """Stop an attack whose gradient is identically zero: it would return x unchanged and report
    the explanation as perfectly robust. The usual cause is a piecewise-linear (ReLU) network, whose
    gradient map has zero derivative almost everywhere: attack it through a softplus surrogate."""
    if not bool(torch.any(grad != 0)):
        raise RobexError(
            f"attack {attack}: the gradient of its objective w.r.t. the input is identically zero on "
            f"explainer {explainer} (a ReLU network's gradient map has zero second derivative); "
            f"set attack.surrogate_beta (softplus surrogate, e.g. 10) so the attack can move")


def stepping_explainer(explainer, noise_samples: int | None):
    """The explainer an attack differentiates each step: for a noise tunnel (SmoothGrad, Uniform
    Gradient) with ``noise_samples`` set, a view with that many draws per step, FRESH at every step
    (the view draws from torch's global stream, which the pipeline seeds per job, even when the
    explainer itself is seeded to give the same map on every call): the attack goes through the
    noise as an expectation over its draws; the reported maps use the explainer as configured.
    Anything else, or ``noise_samples`` None: the explainer itself."""
    if noise_samples is None or not hasattr(explainer, "n_samples"):
        return explainer
    view = copy.copy(explainer)
    view.n_samples = int(noise_samples)
    view.seed = None
    return view


def check_noise_samples(name: str, noise_samples) -> int | None:
    if noise_samples is not None and int(noise_samples) < 1:
        raise RobexError(f"attack {name}: noise_samples={noise_samples} must be >= 1 (or null)")
    return None if noise_samples is None else int(noise_samples)


def per_sample_max(t: torch.Tensor) -> torch.Tensor:
    return t.detach().abs().flatten(1).amax(1)


class NoAttack:
    """The identity 'attack': returns x unchanged (clean evaluation)."""

    threat = NONE
    on_explanation = False

    def __init__(self, name: str = "none"):
        self.name = name

    def __call__(self, model, explainer, x, target) -> AttackResult:
        n = len(x)
        nan = torch.full((n,), float("nan"))
        return AttackResult(x.clone(), {"label_kept": torch.ones(n, dtype=torch.bool),
                                        "linf": torch.zeros(n), "objective_before": nan,
                                        "objective_after": nan.clone()})
