"""FGSM adversarial fine-tuning (ATEX Sec. 4.4): per batch, loss = CE(clean) + CE(FGSM example)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from robex.attacks.fgsm import fgsm
from robex.errors import RobexError, check_range
from robex.utils import batches, progress


class FGSMAdversarialTraining:
    """``epochs`` passes over the training split; each batch adds its FGSM examples (made with the
    current model) to the clean batch: "50,000 FGSM samples from the training data combined with
    the original training data" for one epoch over FashionMNIST's 50k training split."""

    stages = 1

    def __init__(self, name: str = "fgsm_at", eps: float = 0.1, epochs: int = 1, lr: float = 1.5e-3,
                 batch_size: int = 100, limit: int | None = None, seed: int = 0, show_progress: bool = True):
        self.name = name
        self.eps = check_range("adversarial training eps", eps, 0.0, 1.0)
        if epochs < 1:
            raise RobexError("adversarial training epochs must be >= 1")
        self.epochs, self.lr, self.batch_size = int(epochs), float(lr), int(batch_size)
        self.limit, self.seed, self.show_progress = limit, int(seed), show_progress

    def apply_stage(self, stage: int, teacher, model, data) -> dict:
        device = next(model.parameters()).device
        x_all, y_all = data.train_x, data.train_y
        if self.limit:
            x_all, y_all = x_all[: self.limit], y_all[: self.limit]
        gen = torch.Generator().manual_seed(self.seed + 4242)
        opt = torch.optim.Adam(model.parameters(), lr=self.lr)
        total, steps = 0.0, 0
        for epoch in range(self.epochs):
            perm = torch.randperm(len(y_all), generator=gen)
            bar = progress(total=len(perm), desc=f"FGSM adversarial training {epoch + 1}", enabled=self.show_progress)
            for s in batches(len(perm), self.batch_size):
                idx = perm[s]
                x, y = x_all[idx].to(device), y_all[idx].to(device)
                model.eval()
                x_adv = fgsm(model, x, y, self.eps)
                model.train()
                loss = F.cross_entropy(model(x), y) + F.cross_entropy(model(x_adv), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total, steps = total + loss.item(), steps + 1
                bar.update(len(idx))
            bar.close()
        model.eval()
        return {"loss": total / max(1, steps)}
