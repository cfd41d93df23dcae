"""Helpers shared by tasks."""
from __future__ import annotations

import math

import torch

from robex.errors import RobexError
from robex.report.samples import attach
from robex.report.schema import metric_columns


def mean_se(values: torch.Tensor) -> tuple[float, float, int]:
    """(mean, standard error, n) of the finite entries of a 1-d tensor."""
    v = values.detach().double().flatten()
    v = v[torch.isfinite(v)]
    n = len(v)
    if n == 0:
        return float("nan"), float("nan"), 0
    se = (v.std(unbiased=True).item() / math.sqrt(n)) if n > 1 else float("nan")
    return v.mean().item(), se, n


def summary_rows(ctx, per_sample: dict, metrics: dict | None = None, samples: bool = False,
                 **columns) -> list[dict]:
    """One row per per-sample tensor: mean and standard error over its finite entries; where some
    entries are NaN, an extra ``<name>__nan`` row counts them (never dropped silently). A name that is
    a key of ``metrics`` (or ``<key>_attacked``, ``<key>_start``) records that metric's parameters and
    direction. With ``samples``, the rows of those metrics also carry their per-image values
    (:mod:`robex.report.samples`: the claims engine pairs rows measured on the same images)."""
    rows = []
    metrics = metrics or {}
    for name, values in per_sample.items():
        v = values.detach().float().cpu().flatten()
        m, se, n = mean_se(v)
        metric = (metrics.get(name) or metrics.get(name.removesuffix("_attacked"))
                  or metrics.get(name.removesuffix("_start")))
        described = metric_columns(metric) if metric is not None else {}
        row = ctx.row(name, m, se, n, **described, **columns)
        rows.append(attach(row, v.numpy()) if samples and metric is not None else row)
        missing = int((~torch.isfinite(v)).sum())
        if missing and not name.startswith("objective_"):
            rows.append(ctx.row(f"{name}__nan", missing, n=len(v), **columns))
    return rows


def explanation_target(model, x: torch.Tensor, y: torch.Tensor, which: str) -> torch.Tensor:
    """The class whose explanation is computed: the true ``label`` or the model's ``prediction``."""
    if which == "label":
        return y
    if which == "prediction":
        with torch.no_grad():
            return model(x).argmax(1)
    raise RobexError(f"task.target={which!r}: choose 'label' or 'prediction'")


def eval_subset(ctx):
    """The first ``n_eval`` test images (unshuffled, misclassified ones included)."""
    data = ctx.data()
    n = int(ctx.cfg.n_eval)
    if not 1 <= n <= len(data.test_y):
        raise RobexError(f"n_eval={n} must be in [1, {len(data.test_y)}] for {data.name}")
    return data.test_x[:n].to(ctx.device), data.test_y[:n].to(ctx.device)
