"""ATEX Fig. 2 (Sec. 4.3): are a model's maps (the job's ``explainer``, the vanilla gradient in the
paper) close to SmoothGrad?

Reference: SmoothGrad of the *normally trained* model (``reference`` explainer, 100 Gaussian noise
copies in the paper). Compared: the job explainer's map of the job's model (baseline for
defense=none, ATEX after k iterations for defense=atex). Both heatmaps are scaled to [0, 1]
(min-max per map) before SSIM (Gaussian window 11, sigma 1.5, data range 1).
Metric rows: ``ssim_to_smoothgrad`` (mean, se over the first n_eval test images; its per-image values
are kept, :mod:`robex.report.samples`, so k = 0 and k > 0 pair image by image) and ``accuracy``.
"""
from __future__ import annotations

import torch
from hydra.utils import instantiate

from robex.metrics.similarity import minmax_normalise, ssim
from robex.report.samples import attach
from robex.tasks.common import eval_subset, explanation_target, mean_se
from robex.utils import batches


class SmoothnessTask:
    def __init__(self, reference, name: str = "smoothness", target: str = "label", batch_size: int = 100):
        self.name = name
        self.reference = reference  # explainer config (SmoothGrad)
        self.target = target
        self.batch_size = int(batch_size)

    def __call__(self, ctx) -> list[dict]:
        base = ctx.trained_model()
        model = ctx.defended_model()
        stages = ctx.defense(ctx.cfg.defense).stages
        reference = instantiate(self.reference)
        x, y = eval_subset(ctx)
        target = explanation_target(base, x, y, self.target)
        explainer = instantiate(ctx.cfg.explainer)
        values = []
        for s in batches(len(x), self.batch_size):
            h_ref = reference(base, x[s], target[s])
            h = explainer(model, x[s], target[s])
            values.append(ssim(minmax_normalise(h), minmax_normalise(h_ref)))
        values = torch.cat(values).cpu()
        m, se, n = mean_se(values)
        return [ctx.row("accuracy", ctx.test_accuracy(model), step=stages),
                attach(ctx.row("ssim_to_smoothgrad", m, se, n, step=stages, explainer=reference.name), values.numpy())]
