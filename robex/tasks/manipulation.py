"""Explanation manipulation under a budget: the ATEX tables' measurement.

For the (defended) model: clean test accuracy; then, on the first ``n_eval`` test images, the
explanation of x and of the attacked x', compared with

- ``spearman``: Spearman rank correlation of the two heatmaps (average ranks for ties),
- ``topk``: top-k intersection of the two heatmaps (k = ``topk``, 50 of 784 pixels in the paper),

and the attack's own facts: ``label_kept``, ``linf``, ``objective_before``, ``objective_after``.
Metric rows: ``accuracy`` plus each of the above (mean and standard error over the images).
"""
from __future__ import annotations

from hydra.utils import instantiate

from robex.metrics.similarity import spearman, topk_intersection
from robex.tasks.common import eval_subset, explanation_target, mean_se


class ExplanationManipulationTask:
    def __init__(self, name: str = "manipulation", target: str = "label", topk: int = 50):
        self.name = name
        self.target = target
        self.topk = int(topk)

    def __call__(self, ctx) -> list[dict]:
        cfg = ctx.cfg
        defense = instantiate(cfg.defense)
        model = ctx.defended_model()
        explainer = instantiate(cfg.explainer)
        attack = instantiate(cfg.attack)
        rows = [ctx.row("accuracy", ctx.test_accuracy(model), n=int(cfg.get("accuracy_limit") or len(ctx.data().test_y)),
                        k=defense.stages)]
        x, y = eval_subset(ctx)
        target = explanation_target(model, x, y, self.target)
        h_clean = explainer(model, x, target)
        result = attack(model, explainer, x, target)
        h_adv = explainer(model, result.x_adv, target)
        per_sample = {"spearman": spearman(h_clean, h_adv),
                      "topk": topk_intersection(h_clean, h_adv, self.topk), **result.facts}
        for name, values in per_sample.items():
            m, se, n = mean_se(values.float().cpu())
            rows.append(ctx.row(name, m, se, n, k=defense.stages))
        return rows
