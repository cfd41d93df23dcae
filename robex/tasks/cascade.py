"""Cascading model-parameter randomisation (Adebayo et al. 2018, "Sanity checks for saliency maps"):
re-initialise the network's layers cumulatively from the logits down and ask how similar each map
still is to the original one. An explanation that keeps its map while the weights it should explain
are destroyed is insensitive to the model.

Flow (its own task: the model changes step by step): the job's (defended) model is copied once;
step 0 is the original; step k re-initialises unit ``layers[k-1]`` (every submodule with
``reset_parameters``, weights and batch-norm statistics alike, under the generator seed
``seed * 1000 + k``) on top of the units before it. At each step the explainer's raw attribution R
of the class the original model predicts gives two maps: |R| summed over channels (``abs``) and R
summed over channels (``signed``); the Spearman rank correlation of each with the original's is
recorded per image.

Rows: ``spearman_abs`` and ``spearman_signed`` per step (mean, se over the first n_eval test
images), ``step`` = k, ``step_axis`` = ``cascade``, ``metric_params`` = ``layer=<unit>`` (the last
unit randomised; ``original`` at step 0). With ``n_gallery`` > 0 the abs maps of the first images
at every step are returned as arrays (the gallery figure).

``layers``: module names of the model from the top down (the reference note's orders for VGG16 and
ResNet-18); ``null`` takes every leaf Conv2d / Linear in reverse order. A name the model does not
have is a one-line error listing the names it has.
"""
from __future__ import annotations

import copy

import numpy as np
import torch
from hydra.utils import instantiate
from torch import nn

from robex.errors import RobexError
from robex.metrics.similarity import spearman
from robex.tasks.common import eval_subset, explanation_target, mean_se
from robex.utils import batches


def default_units(model: nn.Module) -> list[str]:
    """Every leaf Conv2d / Linear of the model, from the output back to the input."""
    names = [n for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    return names[::-1]


def check_units(model: nn.Module, units: list[str]) -> None:
    names = {n for n, _ in model.named_modules() if n}
    missing = [u for u in units if u not in names]
    if missing:
        known = ", ".join(sorted(names, key=lambda n: (n.count("."), n))[:40])
        raise RobexError(f"task.layers names {missing}, which the model does not have; its modules: {known}")
    if len(set(units)) != len(units):
        raise RobexError(f"task.layers lists a module twice: {units}")


def randomise(module: nn.Module, seed: int) -> int:
    """Re-initialise every submodule that can (``reset_parameters``); returns how many did."""
    count = 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for m in module.modules():
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.reset_running_stats()
                count += 1
    if count == 0:
        raise RobexError(f"module {type(module).__name__} has no parameters to randomise")
    return count


class CascadeRandomisationTask:
    def __init__(self, name: str = "cascade", layers: list[str] | None = None, seed: int = 0,
                 target: str = "prediction", n_gallery: int = 0, batch_size: int = 100):
        self.name = name
        self.layers = None if layers is None else [str(u) for u in layers]
        self.seed, self.target = int(seed), target
        self.n_gallery, self.batch_size = int(n_gallery), int(batch_size)

    def _maps(self, explainer, model, x, target) -> tuple[torch.Tensor, torch.Tensor]:
        abs_maps, signed = [], []
        for s in batches(len(x), self.batch_size):
            r = explainer.attribute(model, x[s], target[s]).detach()
            abs_maps.append(r.abs().sum(1))
            signed.append(r.sum(1))
        return torch.cat(abs_maps), torch.cat(signed)

    def __call__(self, ctx):
        model = ctx.defended_model()
        units = self.layers if self.layers is not None else default_units(model)
        check_units(model, units)
        explainer = instantiate(ctx.cfg.explainer)
        x, y = eval_subset(ctx)
        target = explanation_target(model, x, y, self.target)
        work = copy.deepcopy(model).eval()
        abs0, signed0 = self._maps(explainer, work, x, target)
        rows, gallery = [], [abs0[:self.n_gallery].cpu()]
        for k in range(len(units) + 1):
            if k:
                randomise(work.get_submodule(units[k - 1]), self.seed * 1000 + k)
                abs_k, signed_k = self._maps(explainer, work, x, target)
                gallery.append(abs_k[:self.n_gallery].cpu())
            else:
                abs_k, signed_k = abs0, signed0
            layer = f"layer={units[k - 1] if k else 'original'}"
            for metric, a, b in (("spearman_abs", abs0, abs_k), ("spearman_signed", signed0, signed_k)):
                m, se, n = mean_se(spearman(a, b).cpu())
                rows.append(ctx.row(metric, m, se, n, step=k, step_axis="cascade", metric_params=layer,
                                    higher_is_better=""))
        arrays = {}
        if self.n_gallery:
            arrays = {"maps": torch.stack(gallery).numpy(), "inputs": x[:self.n_gallery].cpu().numpy(),
                      "layers": np.array(["original"] + units)}
        return (rows, arrays) if arrays else rows
