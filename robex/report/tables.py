"""Generic helpers for paper-shaped tables: look up a reproduced value, format paper vs robex."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from robex.utils import atomic_write_text


def lookup(rows: pd.DataFrame, metric: str, **where) -> tuple[float, float, int]:
    """(value, se, n) of the configuration matching ``metric`` and the column filters (NaNs if
    absent). Several seeds of it are averaged: the mean of their values, with the seed-level
    se = sqrt(mean se_i^2 + var(values) / m) (the seeds share their test images, so the image term is
    not divided by m; :func:`seed_variance`, which the claims engine uses too), n summed (one unknown se makes the combined se unknown); identical rows written by several jobs count once; rows that differ by more than the
    seed are an error (the filters are too loose)."""
    sel = rows[rows["metric"] == metric]
    for col, val in where.items():
        if isinstance(val, float):
            sel = sel[(sel[col].astype(float) - val).abs() < 1e-9]
        else:
            sel = sel[sel[col].astype(str) == str(val)]
    if sel.empty:
        return float("nan"), float("nan"), 0
    seeds = sel["seed"] if "seed" in sel.columns else pd.Series(0, index=sel.index)
    sel = sel.assign(_seed=seeds).drop_duplicates(subset=["_seed", "value"])
    if sel["_seed"].duplicated().any():
        raise ValueError(f"{len(sel)} different rows for {metric} {where} with the same seed")
    # an unknown se (NaN, e.g. an accuracy) stays unknown: never summed as 0
    se = math.sqrt(sum(seed_variance(sel["value"].astype(float), sel["se"].astype(float) ** 2)))
    return float(sel["value"].astype(float).mean()), se, int(sel["n"].astype(int).sum())


def seed_variance(values, variances) -> tuple[float, float]:
    """The two terms of the variance of a mean over m seeds that share their test images: the mean
    per-seed (image) variance, not divided by m, and the between-seed sample variance / m (0 for one
    seed). A NaN variance makes the first term NaN (unknown stays unknown)."""
    v, s = np.asarray(values, dtype=float), np.asarray(variances, dtype=float)
    m = len(v)
    return float(s.mean()), (float(v.var(ddof=1)) / m if m > 1 else 0.0)


def fmt(value: float, digits: int = 3) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def paper_vs(paper: float | None, robex: float, digits: int = 3) -> str:
    """'paper / robex' cell text."""
    p = "-" if paper is None else fmt(float(paper), digits)
    return f"{p} / {fmt(robex, digits)}"


def markdown_table(header: list[str], body: list[list[str]]) -> str:
    """A markdown table; a '|' inside a cell (|a - b|) is escaped, so it cannot end the cell."""
    def line(cells) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    lines = [line(header), "|" + "---|" * len(header)] + [line(row) for row in body]
    return "\n".join(lines) + "\n"


def write_table(out_dir, stem: str, tidy: pd.DataFrame, markdown: str) -> None:
    atomic_write_text(out_dir / f"{stem}.csv", tidy.to_csv(index=False))
    atomic_write_text(out_dir / f"{stem}.md", markdown)
