"""RelEx: the figure drawn from per-job arrays (the Fig. 1 gallery) and the budget note of the tables.
Curves and the table are layouts in the presets (robex/report/plot.py, robex/report/pivot.py)."""
from __future__ import annotations

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from robex.report.figures import plt, save_figure


def _image(a: np.ndarray) -> np.ndarray:
    """(C, H, W) in [0, 1] -> something imshow draws."""
    return a.transpose(1, 2, 0).clip(0, 1) if a.shape[0] == 3 else a[0].clip(0, 1)


def _mask(m: np.ndarray) -> np.ndarray:
    """A map as a 2-d mask: (C, H, W) masks are averaged over the channels."""
    return m.mean(0) if m.ndim == 3 else m


def budget_note(rows: pd.DataFrame) -> str:
    """The [0, 1] pixel equivalent of each normalised-unit budget (a table's ``{note}``): the mean over
    images of the largest pixel change the attack made (the ``linf`` rows), per budget and model."""
    lin = rows[(rows["metric"] == "linf") & rows["budget"].notna()] if len(rows) else rows
    if not len(lin):
        return ""
    parts = []
    for budget, g in sorted(lin.groupby("budget"), key=lambda kv: float(kv[0])):
        per_defense = g.groupby("defense")["value"].mean() if "defense" in g else pd.Series(dtype=float)
        low, high = per_defense.min(), per_defense.max()
        span = f"{low:.4f}" if np.isclose(low, high, atol=5e-5) else f"{low:.4f}-{high:.4f}"
        parts.append(f"{float(budget):g} -> {span}")
    return ("In [0, 1] pixels, the largest change the attack made (mean over images) at each eps: "
            + ", ".join(parts) + ". ")


def render_relex_gallery(rows, paper: DictConfig, out_dir, arrays=None) -> pd.DataFrame:
    """Fig. 1: for one image (``paper.sample``), the PGD images at each eps (top row) and, for each
    method, its mask of the attacked image m_adv (averaged over channels) as a heat map on one
    0-1 scale with a colour bar, so a sparse mask (RelEx's shrinks as eps grows) stays visible
    where m_adv * x_adv would be black. ``figure.csv`` lists every panel's method, eps, the softmax of
    the clean class on x and x', and the mask's mean."""
    sample = int(paper.get("sample", 0))
    labels = OmegaConf.to_container(paper.get("labels") or {}, resolve=True)
    jobs = [a for a in (arrays or []) if "maps_adv" in a]
    if not jobs:
        raise ValueError("the RelEx gallery needs the jobs' arrays (task.keep_maps > 0)")
    budgets = sorted({float(a["_budget"]) for a in jobs})
    methods = [m for m in labels if any(a["_explainer"] == m for a in jobs)] or \
        sorted({str(a["_explainer"]) for a in jobs})
    # one narrow last column holds the colour bar (a colour bar stolen from the panels breaks tight_layout)
    fig, grid = plt.subplots(len(methods) + 1, len(budgets) + 1, squeeze=False,
                             figsize=(1.5 * len(budgets) + 0.5, 1.6 * (len(methods) + 1)),
                             gridspec_kw={"width_ratios": [1.0] * len(budgets) + [0.08]})
    axes, bar_axes = grid[:, :-1], grid[:, -1]
    records = []
    for j, eps in enumerate(budgets):
        first = next(a for a in jobs if float(a["_budget"]) == eps)
        ax = axes[0, j]
        ax.imshow(_image(first["inputs_adv"][sample]), cmap="gray")
        ax.set_title(f"PGD eps {eps:g}\np(clean class) {float(first['p_adv'][sample]):.2f}", fontsize=6)
        for i, method in enumerate(methods, start=1):
            ax = axes[i, j]
            job = next((a for a in jobs if a["_explainer"] == method and float(a["_budget"]) == eps), None)
            if job is None:
                ax.axis("off")
                continue
            m = _mask(job["maps_adv"][sample])
            heat = ax.imshow(m, cmap="magma", vmin=0.0, vmax=1.0)
            ax.set_title(f"{labels.get(method, method)} (mean {float(m.mean()):.2f})", fontsize=6)
            records.append({"method": method, "budget": eps, "image": sample,
                            "target": int(job["target"][sample]), "p_clean": float(job["p_clean"][sample]),
                            "p_adv": float(job["p_adv"][sample]), "mask_mean": float(m.mean())})
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    for i, ax in enumerate(bar_axes):
        if i == 1 and records:
            bar = fig.colorbar(heat, cax=ax)
            bar.set_label("mask m_adv\n(channel mean)", fontsize=6)
            bar.ax.tick_params(labelsize=6)
        else:
            ax.axis("off")
    fig.suptitle(paper.title, fontsize=7)
    return save_figure(fig, out_dir, pd.DataFrame(records))
