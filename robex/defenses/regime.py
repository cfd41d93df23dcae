"""A defense that is a training regime: the one training loop (robex/trainers/fit.py) with the
regime's loss, from scratch (``start: init``, e.g. PGD adversarial training) or from the trained
model (``start: trained``, e.g. CURE fine-tuning). The loss is a config node
(robex/trainers/losses.py); the regime's own magnitude (PGD-AT's eps) is ``budget``, the rows'
defense_budget. The last epoch's weights are kept (the authors' code for CURE and the robustness
library for PGD-AT do not select epochs by clean validation accuracy). Cached like every defended
model (its start point is part of the key)."""
from __future__ import annotations

import math

import torch

from robex.errors import RobexError
from robex.trainers.fit import fit
from robex.trainers.optim import optimiser_spec, schedule_spec


class TrainingRegime:
    stages = 1

    def __init__(self, loss, name: str, start: str = "init", epochs: int = 10, optimiser=None, schedule=None,
                 batch_size: int = 128, limit: int | None = None, budget: float | None = None, seed: int = 0,
                 show_progress: bool = True):
        if start not in ("init", "trained"):
            raise RobexError(f"defense {name}: start={start!r}: choose init (from scratch) or trained (fine-tune)")
        if int(epochs) < 1 or int(batch_size) < 1:
            raise RobexError(f"defense {name}: epochs >= 1 and batch_size >= 1 required")
        self.loss, self.name, self.start = loss, name, start
        self.epochs, self.batch_size, self.limit = int(epochs), int(batch_size), limit
        self.optimiser, self.schedule = optimiser_spec(optimiser), schedule_spec(schedule)
        self.budget = math.nan if budget is None else float(budget)
        self.seed, self.show_progress = int(seed), show_progress

    def apply_stage(self, stage: int, teacher, model, data) -> dict:
        x, y = data.train_x, data.train_y
        if self.limit:
            x, y = x[: self.limit], y[: self.limit]
        info = fit(model, self.loss, x, y, epochs=self.epochs, batch_size=self.batch_size,
                   optimiser=self.optimiser, schedule=self.schedule,
                   generator=torch.Generator().manual_seed(self.seed + 5151),
                   desc=self.name, show_progress=self.show_progress)
        return {"loss": info["loss"]}
