"""FGSM adversarial fine-tuning (ATEX Sec. 4.4): per batch, loss = CE(clean) + CE(FGSM example)."""
from __future__ import annotations

import torch

from robex.errors import RobexError, check_range
from robex.trainers.fit import fit
from robex.trainers.losses import FGSMAdversarial
from robex.trainers.optim import optimiser_spec, schedule_spec


class FGSMAdversarialTraining:
    """``epochs`` passes over the training split; each batch adds its FGSM examples (made with the
    current model) to the clean batch: "50,000 FGSM samples from the training data combined with
    the original training data" for one epoch over FashionMNIST's 50k training split."""

    stages = 1

    start = "trained"  # fine-tunes the job's (defended) model

    def __init__(self, name: str = "fgsm_at", eps: float = 0.1, epochs: int = 1, optimiser=None,
                 schedule=None, batch_size: int = 100, limit: int | None = None, seed: int = 0,
                 show_progress: bool = True):
        self.name = name
        self.eps = check_range("adversarial training eps", eps, 0.0, 1.0)
        self.budget = self.eps  # the defense's own magnitude, the rows' defense_budget
        if epochs < 1:
            raise RobexError("adversarial training epochs must be >= 1")
        self.epochs, self.batch_size = int(epochs), int(batch_size)
        self.optimiser, self.schedule = optimiser_spec(optimiser), schedule_spec(schedule)
        self.limit, self.seed, self.show_progress = limit, int(seed), show_progress

    def apply_stage(self, stage: int, teacher, model, data) -> dict:
        x_all, y_all = data.train_x, data.train_y
        if self.limit:
            x_all, y_all = x_all[: self.limit], y_all[: self.limit]
        info = fit(model, FGSMAdversarial(self.eps), x_all, y_all, epochs=self.epochs,
                   batch_size=self.batch_size, optimiser=self.optimiser, schedule=self.schedule,
                   generator=torch.Generator().manual_seed(self.seed + 4242),
                   desc="FGSM adversarial training", show_progress=self.show_progress)
        return {"loss": info["loss"]}
