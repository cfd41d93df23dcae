"""Smoothed explanations: the figures drawn from per-job arrays (galleries). Tables and curves are
layouts in the presets (robex/report/pivot.py, robex/report/plot.py)."""
from __future__ import annotations

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from robex.report.figures import plt, save_figure


def _labels(paper: DictConfig) -> dict:
    return OmegaConf.to_container(paper.get("labels") or {}, resolve=True)


def _pixels(img: np.ndarray, **tags) -> pd.DataFrame:
    ii, jj = np.indices(img.shape)
    return pd.DataFrame({**tags, "row": ii.ravel(), "col": jj.ravel(), "value": img.ravel()})


def _show(ax, img, title, cmap):
    if img.ndim == 3:  # (C, H, W) image
        img = img.transpose(1, 2, 0) if img.shape[0] == 3 else img[0]
        cmap = None if img.ndim == 3 else "gray"
    ax.imshow(img, cmap=cmap)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=7)


def render_cascade_gallery(rows, paper: DictConfig, out_dir, arrays=None) -> pd.DataFrame:
    """Fig. 1: one image's |map| per method (rows) after randomising down to each layer (columns).
    ``figure.csv`` lists every plotted pixel (method, step, layer, row, col, value)."""
    sample = int(paper.get("sample", 0))
    labels = _labels(paper)
    jobs = sorted(arrays or [], key=lambda a: list(labels).index(a["_explainer"]) if a["_explainer"] in labels else 99)
    if not jobs:
        raise ValueError("the cascade gallery needs the jobs' arrays (task.n_gallery > 0)")
    layers = [str(v) for v in jobs[0]["layers"]]
    fig, axes = plt.subplots(len(jobs), len(layers) + 1, figsize=(1.1 * (len(layers) + 1), 1.25 * len(jobs)),
                             squeeze=False)
    records = []
    for r, job in enumerate(jobs):
        name = job["_explainer"]
        _show(axes[r, 0], job["inputs"][sample], "input" if r == 0 else "", "gray")
        axes[r, 0].set_ylabel(labels.get(name, name), fontsize=7)
        for s, layer in enumerate(layers):
            img = job["maps"][s, sample]
            _show(axes[r, s + 1], img, layer if r == 0 else "", "hot")
            records.append(_pixels(img, method=name, step=s, layer=layer))
    fig.suptitle(paper.title, fontsize=8)
    return save_figure(fig, out_dir, records)


def render_pointing_gallery(rows, paper: DictConfig, out_dir, arrays=None) -> pd.DataFrame:
    """Fig. 3: for each method and the first kept images, the input, the map of each object's class
    and the objects' masks. ``figure.csv`` lists every plotted pixel."""
    labels = _labels(paper)
    jobs = [a for a in (arrays or []) if "map_obj1" in a]
    if not jobs:
        raise ValueError("the pointing gallery needs the jobs' arrays (task.n_gallery > 0)")
    n = min(int(paper.get("n_images", 2)), min(len(j["inputs"]) for j in jobs))
    panels = ("inputs", "map_obj1", "map_obj2", "mask_obj1", "mask_obj2")
    fig, axes = plt.subplots(len(jobs) * n, len(panels), figsize=(1.3 * len(panels), 1.3 * len(jobs) * n),
                             squeeze=False)
    records = []
    for j, job in enumerate(jobs):
        name = labels.get(job["_explainer"], job["_explainer"])
        for i in range(n):
            r = j * n + i
            for c, panel in enumerate(panels):
                img = job[panel][i]
                title = {"inputs": f"{name}", "map_obj1": f"class {int(job['class_obj1'][i])} (top-1)",
                         "map_obj2": f"class {int(job['class_obj2'][i])}", "mask_obj1": "object 1",
                         "mask_obj2": "object 2"}[panel]
                _show(axes[r, c], img.astype(float), title, "gray" if panel.startswith("mask") else "hot")
                if panel != "inputs":
                    records.append(_pixels(img.astype(float), method=job["_explainer"], image=i, panel=panel))
    fig.suptitle(paper.title, fontsize=8)
    return save_figure(fig, out_dir, records)


def render_attack_gallery(rows, paper: DictConfig, out_dir, arrays=None) -> pd.DataFrame:
    """Fig. 5: for one image (``paper.sample``), per method (rows): the input, its map, the target
    map, then for each attack setting (``paper.attacks``, in order) the perturbed image and its
    manipulated map. ``figure.csv`` lists every plotted map pixel (method, attack, panel, row, col,
    value)."""
    sample = int(paper.get("sample", 0))
    labels = _labels(paper)
    attacks = OmegaConf.to_container(paper.attacks, resolve=True)
    jobs = {(a["_explainer"], a["_attack"]): a for a in (arrays or []) if "maps_adv" in a}
    methods = [m for m in labels if any((m, att) in jobs for att in attacks)]
    if not methods:
        raise ValueError("the attack gallery needs the jobs' arrays (task.keep_maps > 0)")
    ncols = 3 + 2 * len(attacks)
    fig, axes = plt.subplots(len(methods), ncols, figsize=(1.15 * ncols, 1.3 * len(methods)), squeeze=False)
    records = []
    for r, method in enumerate(methods):
        first = next(jobs[(method, att)] for att in attacks if (method, att) in jobs)
        top = r == 0
        _show(axes[r, 0], first["inputs"][sample], "input" if top else "", "gray")
        axes[r, 0].set_ylabel(labels[method], fontsize=7)
        for c, (key, title) in enumerate((("maps", "clean map"), ("maps_target", "target map")), start=1):
            _show(axes[r, c], first[key][sample], title if top else "", "hot")
            records.append(_pixels(first[key][sample], method=method, attack="none", panel=key))
        for a, att in enumerate(attacks):
            ax_img, ax_map = axes[r, 3 + 2 * a], axes[r, 4 + 2 * a]
            if (method, att) not in jobs:
                ax_img.axis("off"), ax_map.axis("off")
                continue
            job = jobs[(method, att)]
            name = str(paper.get("attack_labels", {}).get(att, att))
            _show(ax_img, job["inputs_adv"][sample], f"{name}: x'" if top else "", "gray")
            _show(ax_map, job["maps_adv"][sample], f"{name}: map" if top else "", "hot")
            records.append(_pixels(job["maps_adv"][sample], method=method, attack=att, panel="maps_adv"))
    fig.suptitle(paper.title, fontsize=8)
    return save_figure(fig, out_dir, records)
