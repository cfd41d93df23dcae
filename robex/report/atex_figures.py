"""ATEX Fig. 3, the gallery of maps, from the jobs' arrays (Figs 2 and 4 are row figures: robex/report/plot.py,
laid out in their presets)."""
from __future__ import annotations

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from robex.report.figures import plt, save_figure, subplots
from robex.utils import atomic_write_npz


def _label(dataset: str, source: str) -> str:
    return f"{dataset}\n({source})" if "subset" in source else dataset


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
