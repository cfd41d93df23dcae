"""ATEX Fig. 3: cases of (input, baseline map, defended model's map) with the job's ``explainer``
(the vanilla gradient in the paper), for a seeded random choice of test images. Returns the maps as arrays (``inputs``, ``baseline``,
``defended``, ``labels``, ``indices``); the renderer draws the grid."""
from __future__ import annotations

import torch
from hydra.utils import instantiate

from robex.tasks.common import explanation_target


class GalleryTask:
    def __init__(self, name: str = "gallery", n_images: int = 8, target: str = "label", seed: int = 0):
        self.name = name
        self.n_images = int(n_images)
        self.target = target
        self.seed = int(seed)

    def __call__(self, ctx):
        data = ctx.data()
        gen = torch.Generator().manual_seed(self.seed)
        idx = torch.randperm(len(data.test_y), generator=gen)[: self.n_images].sort().values
        x, y = data.test_x[idx].to(ctx.device), data.test_y[idx].to(ctx.device)
        base, model = ctx.trained_model(), ctx.defended_model()
        target = explanation_target(base, x, y, self.target)
        ex = instantiate(ctx.cfg.explainer)
        arrays = {"inputs": x[:, 0].cpu().numpy(), "baseline": ex(base, x, target).cpu().numpy(),
                  "defended": ex(model, x, target).cpu().numpy(), "labels": y.cpu().numpy(),
                  "indices": idx.numpy()}
        stages = ctx.defense(ctx.cfg.defense).stages
        rows = [ctx.row("accuracy", ctx.test_accuracy(model), step=stages),
                ctx.row("n_cases", len(idx), n=len(idx), step=stages)]
        return rows, arrays
