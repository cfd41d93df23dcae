"""AGG-Mean (Rieger & Hansen 2020): the tables' data note and the figures drawn from per-sample arrays
(transfer and aggregate-vs-single scatters, the visual grid). Its tables are pivot layouts in the presets
(robex/report/pivot.py)."""
from __future__ import annotations

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from robex.report.figures import plt, save_figure, subplots

LABELS = {"gradient": "SM", "guided_backprop": "GB", "lrp": "LRP", "integrated_gradients": "IG",
          "agg_mean": "AGG-Mean", "agg_var": "AGG-Var", "gradcam": "GC", "smoothgrad": "SG",
          "mean_sg_gc": "Mean(SG+GC)"}
METRICS = {"mse_delta": "MSE", "pcc_delta": "PCC", "topk_delta": "top 10%"}


def _attacked_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows where the explainer evaluated is the one attacked."""
    return rows[rows["attacked_explainer"].astype(str) == rows["explainer"].astype(str)]


def data_note(rows: pd.DataFrame) -> str:
    """The data note of an AGG-Mean table (its ``{note}``): model, data, pairs, and the stand-in warning."""
    src = ", ".join(sorted(set(rows["source"].astype(str)))) if len(rows) else "n/a"
    models = ", ".join(sorted(set(rows["model"].astype(str)))) if len(rows) else "n/a"
    n = ", ".join(sorted({str(int(v)) for v in rows["n"]})) if len(rows) else "n/a"
    stand_in = "vgg16" not in models
    note = (f"Model `{models}` on {src}; {n} image pairs. ")
    if stand_in:
        note += ("**Offline stand-in**: the paper's setting (VGG16 on ImageNet) needs weights and images "
                 "that cannot be downloaded here; robex ran the same attack on a VGG-style network it "
                 "trained on FashionMNIST (28x28 maps). Absolute MSE values are not comparable with the "
                 "paper's (224x224 maps, x 1e-9); signs, orderings and PCC / top-k deltas are. ")
    return note


def _job(arrays, attacked):
    found = [a for a in (arrays or []) if str(a.get("attacked")) == attacked]
    return found[0] if found else None


def _scatter(ax, xs, ys, xlabel, ylabel, title):
    ax.scatter(xs, ys, s=10, alpha=0.7)
    lo = float(np.nanmin([np.nanmin(xs), np.nanmin(ys)]))
    hi = float(np.nanmax([np.nanmax(xs), np.nanmax(ys)]))
    ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="identity")
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.set_title(title, fontsize=9)


def render_transfer(rows: pd.DataFrame, paper: DictConfig, out_dir, arrays=None) -> pd.DataFrame:
    """Scatter per sample: the attacked method's delta (x) vs another method's delta on the same
    adversarial images (y), for each (attacked, evaluated) pair in ``paper.pairs``; identity line."""
    pairs = [tuple(p) for p in OmegaConf.to_container(paper.pairs)]
    fig, axes = plt.subplots(len(pairs), 3, figsize=(10, 3.1 * len(pairs)), squeeze=False)
    records = []
    for r, (src, dst) in enumerate(pairs):
        job = _job(arrays, src)
        for c, (metric, label) in enumerate(METRICS.items()):
            ax = axes[r, c]
            if job is None or f"{dst}__{metric}" not in job:
                ax.set_title(f"{src} -> {dst}: no data", fontsize=8)
                continue
            xs, ys = job[f"{src}__{metric}"], job[f"{dst}__{metric}"]
            _scatter(ax, xs, ys, f"{label} delta, {LABELS.get(src, src)} (attacked)",
                     f"{label} delta, {LABELS.get(dst, dst)}", f"attack {LABELS.get(src, src)}, evaluate {LABELS.get(dst, dst)}")
            records.append(pd.DataFrame({"attacked": src, "evaluated": dst, "metric": metric, "sample": np.arange(len(xs)),
                                         "x_attacked": xs, "y_evaluated": ys}))
    fig.suptitle(paper.title, fontsize=10)
    return save_figure(fig, out_dir, records)


def render_aggregate_vs_single(rows: pd.DataFrame, paper: DictConfig, out_dir, arrays=None) -> pd.DataFrame:
    """Fig. 5: per sample, the delta when the single method is attacked (x) vs when AGG-Mean is
    attacked (y); points below the identity (PCC, top-k) mean AGG-Mean is harder to manipulate."""
    single, agg = paper.single, paper.aggregate
    js, ja = _job(arrays, single), _job(arrays, agg)
    fig, axes = subplots(3, width=3.4)
    records = []
    for ax, (metric, label) in zip(axes, METRICS.items()):
        if js is None or ja is None:
            ax.set_title("no data")
            continue
        xs, ys = js[f"{single}__{metric}"], ja[f"{agg}__{metric}"]
        _scatter(ax, xs, ys, f"{label} delta, {LABELS.get(single, single)} attacked",
                 f"{label} delta, {LABELS.get(agg, agg)} attacked", label)
        records.append(pd.DataFrame({"metric": metric, "sample": np.arange(len(xs)), "x_single": xs, "y_aggregate": ys}))
    fig.suptitle(paper.title, fontsize=9)
    return save_figure(fig, out_dir, records)


def render_visual_grid(rows: pd.DataFrame, paper: DictConfig, out_dir, arrays=None) -> pd.DataFrame:
    """Fig. 4: for one sample, each method attacked individually: start map, target map, adversarial
    map (values clipped at the 99th percentile for display), plus the images."""
    sample = int(paper.get("sample", 0))
    methods = [m for m in paper.methods if _job(arrays, m) is not None]
    fig, axes = plt.subplots(len(methods) + 1, 3, figsize=(6.6, 2.2 * (len(methods) + 1)), squeeze=False)
    records = []

    def show(ax, img, title, cmap):
        hi = np.percentile(img, 99) if cmap == "hot" else None
        ax.imshow(np.clip(img, None, hi) if hi is not None else img, cmap=cmap)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(title, fontsize=8)

    if methods:
        job = _job(arrays, methods[0])
        for c, (key, title) in enumerate((("x", "start image"), ("x_target", "target image"), ("x_adv", f"adversarial ({LABELS.get(methods[0], methods[0])})"))):
            img = job[key][sample, 0]
            show(axes[0, c], img, title, "gray")
            records.append(pd.DataFrame({"row": "images", "panel": key, "pixel": np.arange(img.size), "value": img.ravel()}))
    for r, m in enumerate(methods, start=1):
        job = _job(arrays, m)
        for c, (key, title) in enumerate((("map_start", "start"), ("map_target", "target"), ("map_adv", "after attack"))):
            img = job[f"{m}__{key}"][sample]
            show(axes[r, c], img, f"{LABELS.get(m, m)}: {title}", "hot")
            records.append(pd.DataFrame({"row": m, "panel": key, "pixel": np.arange(img.size), "value": img.ravel()}))
    fig.suptitle(paper.title, fontsize=9)
    return save_figure(fig, out_dir, records)
