"""The one training loop of robex."""
from __future__ import annotations

import copy
import logging

import torch
from torch import nn

from robex.errors import RobexError
from robex.models.training import accuracy
from robex.trainers.optim import OptimiserSpec, ScheduleSpec
from robex.utils import batches, failpoint, progress

log = logging.getLogger(__name__)

# Code version of the training loop, part of every trained model's cache key (robex.pipeline.train_spec):
# bump it when a change here alters the trained weights.
TRAINING_VERSION = 1


def fit(model: nn.Module, loss, x: torch.Tensor, y: torch.Tensor, *, epochs: int, batch_size: int,
        optimiser: OptimiserSpec, generator: torch.Generator, schedule: ScheduleSpec | None = None,
        validation: tuple[torch.Tensor, torch.Tensor] | None = None, desc: str = "train",
        show_progress: bool = True, inner_steps: int = 1) -> dict:
    """Train ``model`` in place on (x, y): ``epochs`` passes in a fresh order drawn from
    ``generator`` (a loss with ``start_epoch(epoch)`` is told each epoch first); per batch the gradients are zeroed, ``loss`` back-propagates, the optimiser steps;
    the schedule steps per epoch. With ``validation`` = (val_x, val_y), the weights of the epoch with
    the best validation accuracy are kept (the first best on ties). Ends in eval mode with finite
    weights (an error otherwise: a diverged run is never handed on). Returns the history.

    ``inner_steps`` > 1 takes that many optimiser steps on each batch's samples (the ATEX authors'
    code takes 4): the loss then needs ``prepare(model, x, y, idx, generator)``, which draws the
    batch's samples once and returns ``step(model) -> float`` (back-propagates, returns the loss)."""
    if epochs < 1 or batch_size < 1 or inner_steps < 1:
        raise RobexError(f"{desc}: epochs >= 1, batch_size >= 1 and inner_steps >= 1 required "
                         f"(got {epochs}, {batch_size}, {inner_steps})")
    if inner_steps > 1 and not hasattr(loss, "prepare"):
        raise RobexError(f"{desc}: inner_steps={inner_steps} needs a loss that draws its samples once per batch "
                         f"(prepare); {type(loss).__name__} has none")
    device = next(model.parameters()).device
    opt = optimiser.build(model.parameters())
    sched = (schedule or ScheduleSpec()).build(opt, epochs)
    best_acc, best_state, history = -1.0, None, []
    for epoch in range(epochs):
        if hasattr(loss, "start_epoch"):  # losses whose settings change per epoch (CURE's h)
            loss.start_epoch(epoch)
        model.train()
        perm = torch.randperm(len(y), generator=generator)
        label = f"{desc} {epoch + 1}/{epochs}" if epochs > 1 else desc
        bar = progress(total=len(perm), desc=label, enabled=show_progress)
        total, count = 0.0, 0
        for s in batches(len(perm), batch_size):
            idx = perm[s]
            xb, yb = x[idx].to(device), y[idx].to(device)
            if inner_steps == 1:  # one step: the loss draws its samples as it computes
                step = lambda m, xb=xb, yb=yb, idx=idx: loss(m, xb, yb, idx, generator)  # noqa: E731
            else:
                step = loss.prepare(model, xb, yb, idx, generator)
            for _ in range(inner_steps):
                opt.zero_grad(set_to_none=True)
                value = step(model)
                opt.step()
            total, count = total + value * len(idx), count + len(idx)
            bar.update(len(idx))
        bar.close()
        if sched is not None:
            sched.step()
        model.eval()
        record = {"epoch": epoch + 1, "loss": total / max(count, 1)}
        if validation is not None:
            val_x, val_y = validation
            record["val_accuracy"] = accuracy(model, val_x, val_y) if len(val_y) else float("nan")
            log.info("%s epoch %d: val accuracy %.4f", desc, epoch + 1, record["val_accuracy"])
            if best_state is None or record["val_accuracy"] > best_acc:
                best_acc, best_state = record["val_accuracy"], copy.deepcopy(model.state_dict())
        history.append(record)
        failpoint("train_epoch")
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    check_finite(model, f"{desc}: training diverged")
    return {"history": history, "best_val_accuracy": best_acc if validation is not None else float("nan"),
            "loss": history[-1]["loss"]}


def check_finite(model: nn.Module, context: str) -> None:
    """Raise a RobexError naming the first parameter or buffer with a NaN or infinite entry."""
    for name, t in list(model.named_parameters()) + list(model.named_buffers()):
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise RobexError(f"{context}: the model's {name} holds non-finite values (NaN or inf)")
