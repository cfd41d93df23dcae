"""Predictions and accuracy of a classifier (training itself: :func:`robex.trainers.fit.fit`)."""
from __future__ import annotations

import torch
from torch import nn

from robex.utils import batches


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Predicted labels of ``x`` (on the model's device), batched."""
    device = next(model.parameters()).device
    out = [model(x[s].to(device)).argmax(1).cpu() for s in batches(len(x), batch_size)]
    return torch.cat(out) if out else torch.empty(0, dtype=torch.long)


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> float:
    was_training = model.training
    model.eval()
    acc = (predict(model, x, batch_size) == y).float().mean().item()
    model.train(was_training)
    return acc
