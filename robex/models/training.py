"""Supervised training of a classifier with the best-validation checkpoint kept, and accuracy."""
from __future__ import annotations

import copy
import logging

import torch
import torch.nn.functional as F
from torch import nn

from robex.utils import batches, progress

log = logging.getLogger(__name__)

# Code version of the training loop, part of every trained model's cache key (robex.pipeline.train_spec):
# bump it when a change here alters the trained weights.
TRAINING_VERSION = 1


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


def train_classifier(model: nn.Module, train_x, train_y, val_x, val_y, *, epochs: int = 2,
                     batch_size: int = 100, lr: float = 1.5e-3, seed: int = 0,
                     show_progress: bool = True) -> dict:
    """Adam + cross-entropy; after each epoch the validation accuracy decides which weights are
    kept (best so far). Returns the training history; ``model`` ends with the best weights."""
    device = next(model.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    best_acc, best_state, history = -1.0, None, []
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(train_y), generator=gen)
        bar = progress(total=len(perm), desc=f"train epoch {epoch + 1}/{epochs}", enabled=show_progress)
        for s in batches(len(perm), batch_size):
            idx = perm[s]
            xb, yb = train_x[idx].to(device), train_y[idx].to(device)
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            bar.update(len(idx))
        bar.close()
        model.eval()
        val_acc = accuracy(model, val_x, val_y) if len(val_y) else float("nan")
        history.append({"epoch": epoch + 1, "val_accuracy": val_acc, "loss": loss.item()})
        log.info("epoch %d: val accuracy %.4f", epoch + 1, val_acc)
        if best_state is None or val_acc > best_acc:
            best_acc, best_state = val_acc, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    model.eval()
    return {"history": history, "best_val_accuracy": best_acc}
