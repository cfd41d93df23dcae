"""ATEX Figures 2-4 from the sweep's rows (and, for Fig. 3, the jobs' arrays)."""
from __future__ import annotations

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from robex.report.figures import plt, save_figure, subplots
from robex.utils import atomic_write_npz


def _label(dataset: str, source: str) -> str:
    return f"{dataset}\n({source})" if "subset" in source else dataset


def render_smoothness(rows: pd.DataFrame, paper: DictConfig, out_dir, arrays=None) -> pd.DataFrame:
    """Bars: SSIM to SmoothGrad, baseline (k = 0) vs ATEX (k > 0), per data set."""
    sel = rows[rows["metric"] == "ssim_to_smoothgrad"].copy()
    sel["model"] = np.where(sel["step"].astype(int) == 0, "baseline", "ATEX k=" + sel["step"].astype(str))
    plotted = sel[["dataset", "source", "model", "step", "value", "se", "n"]].rename(columns={"value": "ssim"})
    plotted = plotted.sort_values(["dataset", "step"]).reset_index(drop=True)
    datasets = list(dict.fromkeys(plotted["dataset"]))
    fig, (ax,) = subplots(1, width=5.0)
    width = 0.38
    for j, (model_name, color) in enumerate([("baseline", "tab:gray"), ("ATEX", "tab:blue")]):
        part = plotted[plotted["model"].str.startswith(model_name)]
        xs = [datasets.index(d) + (j - 0.5) * width for d in part["dataset"]]
        ax.bar(xs, part["ssim"], width, yerr=part["se"], color=color, label=part["model"].iloc[0] if len(part) else model_name)
    sources = dict(zip(plotted["dataset"], plotted["source"]))
    ax.set_xticks(range(len(datasets)), [_label(d, sources[d]) for d in datasets])
    ax.set_ylabel("SSIM to SmoothGrad (normal model)")
    ax.set_title("ATEX Fig. 2 (robex)")
    ax.legend()
    save_figure(fig, out_dir, plotted)
    return plotted


def render_gallery(rows: pd.DataFrame, paper: DictConfig, out_dir, arrays=None) -> pd.DataFrame:
    """Grid: one row per case, one block of columns per data set: input | baseline map | ATEX map. The CSV lists every
    plotted pixel (data set, case, panel, row, col, value); figure_data.npz holds the same arrays."""
    arrays = arrays or []
    n_cases = max((len(a["inputs"]) for a in arrays), default=0)
    n_sets = max(1, len(arrays))
    fig, axes = plt.subplots(max(1, n_cases), 3 * n_sets, figsize=(1.25 * 3 * n_sets, 1.3 * max(1, n_cases)),
                             squeeze=False)
    records, npz = [], {}
    for d, job in enumerate(arrays):
        ds = job["_dataset"]
        for c in range(len(job["inputs"])):
            for p, panel in enumerate(("inputs", "baseline", "defended")):
                img = job[panel][c]
                ax = axes[c, 3 * d + p]
                ax.imshow(img, cmap="gray" if panel == "inputs" else "hot")
                ax.set_xticks([])
                ax.set_yticks([])
                if c == 0:
                    name = {"inputs": _label(ds, job["_source"]).split("\n")[0], "baseline": "baseline",
                            "defended": "ATEX"}[panel]
                    ax.set_title(name, fontsize=7)
                ii, jj = np.indices(img.shape)
                records.append(pd.DataFrame({"dataset": ds, "case": c, "test_index": int(job["indices"][c]),
                                             "label": int(job["labels"][c]), "panel": panel,
                                             "row": ii.ravel(), "col": jj.ravel(), "value": img.ravel()}))
        for key in ("inputs", "baseline", "defended", "labels", "indices"):
            npz[f"{ds}_{key}"] = job[key]
    fig.suptitle("ATEX Fig. 3 (robex): input | baseline gradient map | ATEX (5 iterations) gradient map", fontsize=8)
    plotted = save_figure(fig, out_dir, records)
    atomic_write_npz(out_dir / "figure_data.npz", npz)
    return plotted


def render_adv_training(rows: pd.DataFrame, paper: DictConfig, out_dir, arrays=None) -> pd.DataFrame:
    """Lines: accuracy under FGSM after FGSM adversarial training vs ATEX iterations, per data set."""
    sel = rows[rows["metric"].isin(["robust_accuracy", "accuracy", "accuracy_before"])]
    plotted = sel.pivot_table(index=["dataset", "source", "step"], columns="metric", values="value").reset_index()
    plotted = plotted.sort_values(["dataset", "step"]).reset_index(drop=True)
    attacked = sel[sel["metric"] == "robust_accuracy"]
    budgets = ", ".join(f"{b:g}" for b in sorted(attacked["budget"].dropna().unique()))
    attacks = ", ".join(sorted(attacked["attack"].astype(str).unique()))
    datasets = list(dict.fromkeys(plotted["dataset"]))
    fig, axes = subplots(max(1, len(datasets)))
    for ax, ds in zip(axes, datasets):
        part = plotted[plotted["dataset"] == ds]
        ax.plot(part["step"], part["robust_accuracy"], "o-", label=f"under {attacks} (eps {budgets})")
        ax.set_xlabel("ATEX iterations before adversarial training")
        ax.set_ylabel("accuracy")
        ax.set_title(_label(ds, part["source"].iloc[0]).replace("\n", " "), fontsize=9)
        ax.legend(fontsize=8)
    fig.suptitle("ATEX Fig. 4 (robex)")
    save_figure(fig, out_dir, plotted)
    return plotted
