"""ATEX Fig. 4 (Sec. 4.4): efficacy of FGSM adversarial training after k ATEX iterations.

The job's model (ATEX after ``defense.iterations`` = k iterations; k = 0 is the normally trained
model) is fine-tuned with ``adv_training`` (FGSM adversarial training, cached as a stage chained on
the ATEX model), then attacked with a fresh white-box ``attack`` (FGSM) on the whole test set;
misclassified clean images count as wrong. Metric rows: ``robust_accuracy``, ``accuracy`` (clean,
after adversarial training) and ``accuracy_before`` (clean, before it)."""
from __future__ import annotations

import torch
from hydra.utils import instantiate

from robex.utils import batches


class AdversarialTrainingEfficacyTask:
    def __init__(self, adv_training, name: str = "adv_training_efficacy", batch_size: int = 200):
        self.name = name
        self.adv_training = adv_training  # defense config (FGSM adversarial training)
        self.batch_size = int(batch_size)

    def __call__(self, ctx) -> list[dict]:
        cfg = ctx.cfg
        k = ctx.defense(cfg.defense).stages
        atex_model = ctx.defended_model()
        robust = ctx.defended_model(cfg.task.adv_training, on=(ctx.defense_spec(cfg.defense, k), lambda: atex_model))
        attack = ctx.attack()
        data = ctx.data()
        limit = cfg.get("accuracy_limit")
        x, y = (data.test_x[:limit], data.test_y[:limit]) if limit else (data.test_x, data.test_y)
        correct = []
        for s in batches(len(x), self.batch_size):
            xs, ys = x[s].to(ctx.device), y[s].to(ctx.device)
            x_adv = attack(robust, None, xs, ys).x_adv
            with torch.no_grad():
                correct.append((robust(x_adv).argmax(1) == ys).cpu())
        robust_acc = torch.cat(correct).float().mean().item()
        n = len(y)
        return [ctx.row("robust_accuracy", robust_acc, n=n, step=k, attack=attack.name),
                ctx.row("accuracy", ctx.test_accuracy(robust), n=n, step=k, attack="none"),
                ctx.row("accuracy_before", ctx.test_accuracy(atex_model), n=n, step=k, attack="none")]
