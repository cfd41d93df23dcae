"""AGG-Mean (Rieger & Hansen 2020): the tables' data note and the figures drawn from per-sample arrays
(transfer and aggregate-vs-single scatters, the visual grids of Figs. 1, 3, 4, 7-10, 15-16). Its tables are pivot layouts in the presets
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
                 "trained on FashionMNIST (28x28 maps; the title says for how many epochs, and "
                 "results/aggmean_calibration.md why 30); the attacks on it reach smaller PCC / top-k "
                 "deltas than the paper's on VGG16. Absolute MSE values are not comparable with the "
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


def _show(fig, ax, img, title, cmap):
    """One panel: a map (``hot``, clipped at its 99th percentile for display, as the paper does) or
    an image (``gray``, 0-1), with a colour bar giving the scale."""
    if cmap == "hot":
        hi = float(np.percentile(img, 99))
        im = ax.imshow(np.clip(img, None, hi), cmap=cmap, vmin=0.0, vmax=hi if hi > 0 else None)
    else:
        im = ax.imshow(img, cmap=cmap, vmin=0.0, vmax=1.0)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=7)
    bar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
    bar.ax.tick_params(labelsize=5)


def _map_target(job, m: str, sample: int, square_fraction: float):
    """The map the attack on ``m`` aimed at: another image's map (stored), or, for the blank-square
    objective (no stored target), the start map with the centred square zeroed and renormalised."""
    key = f"{m}__map_target"
    if key in job:
        return job[key][sample]
    import torch

    from robex.attacks.targeted_map import blank_square_target, centre_square_mask

    h = torch.as_tensor(job[f"{m}__map_start"][sample:sample + 1])
    return blank_square_target(h, centre_square_mask(*h.shape[-2:], square_fraction)).numpy()[0]


def render_visual_grid(rows: pd.DataFrame, paper: DictConfig, out_dir, arrays=None) -> pd.DataFrame:
    """Figs. 1, 4, 7-10, 15-16: for one sample (``paper.sample``, one of the first ``keep_maps``
    pairs), each method of ``paper.methods`` attacked on its own map: start map, target map, map
    after the attack (maps clipped at the 99th percentile for display), each with a colour bar; the
    start, target and first adversarial image on top. ``adv_inputs: true`` adds each method's
    adversarial input beside its maps (Fig. 7: the appendix's version of Fig. 4). Blank-square jobs
    (Figs. 15-16) show the square-zeroed start map as their target."""
    sample = int(paper.get("sample", 0))
    methods = [m for m in paper.methods if _job(arrays, m) is not None]
    adv_inputs = bool(paper.get("adv_inputs", False))
    square = float(paper.get("square_fraction", 0.25))
    ncols = 4 if adv_inputs else 3
    fig, axes = plt.subplots(len(methods) + 1, ncols, figsize=(2.5 * ncols, 2.2 * (len(methods) + 1)), squeeze=False)
    records = []
    for ax in axes[0]:
        ax.axis("off")
    if methods:
        job = _job(arrays, methods[0])
        aimed = f"{methods[0]}__map_target" in job  # another image's map (not the blank square)
        top = [("x", "start image")] + ([("x_target", "target image")] if aimed else []) \
            + [("x_adv", f"adversarial ({LABELS.get(methods[0], methods[0])})")]
        for c, (key, title) in enumerate(top):
            img = job[key][sample, 0]
            axes[0, c].axis("on")
            _show(fig, axes[0, c], img, title, "gray")
            records.append(pd.DataFrame({"row": "images", "panel": key, "pixel": np.arange(img.size), "value": img.ravel()}))
    for r, m in enumerate(methods, start=1):
        job = _job(arrays, m)
        panels = [("map_start", "start", job[f"{m}__map_start"][sample]),
                  ("map_target", "target", _map_target(job, m, sample, square)),
                  ("map_adv", "after attack", job[f"{m}__map_adv"][sample])]
        for c, (key, title, img) in enumerate(panels):
            _show(fig, axes[r, c], img, f"{LABELS.get(m, m)}: {title}", "hot")
            records.append(pd.DataFrame({"row": m, "panel": key, "pixel": np.arange(img.size), "value": img.ravel()}))
        if adv_inputs:
            img = job["x_adv"][sample, 0]
            _show(fig, axes[r, 3], img, f"adversarial input ({LABELS.get(m, m)} attacked)", "gray")
            records.append(pd.DataFrame({"row": m, "panel": "x_adv", "pixel": np.arange(img.size), "value": img.ravel()}))
    fig.suptitle(paper.title, fontsize=9)
    return save_figure(fig, out_dir, records)


def render_transfer_grid(rows: pd.DataFrame, paper: DictConfig, out_dir, arrays=None) -> pd.DataFrame:
    """Fig. 3: one sample attacked through ``paper.attacked``; its maps by every method of
    ``paper.evaluated`` (one row each): start, target (that method's map of the target image), and
    on the adversarial input, each with a colour bar; the adversarial input itself on the right."""
    sample, src = int(paper.get("sample", 0)), str(paper.attacked)
    job = _job(arrays, src)
    evaluated = [m for m in paper.evaluated if job is not None and f"{m}__map_adv" in job]
    fig, axes = plt.subplots(max(1, len(evaluated)), 4, figsize=(10, 2.3 * max(1, len(evaluated))), squeeze=False)
    records = []
    for r, m in enumerate(evaluated):
        panels = [("map_start", "start"), ("map_target", "target"), ("map_adv", f"on the input attacked through {LABELS.get(src, src)}")]
        for c, (key, title) in enumerate(panels):
            img = job[f"{m}__{key}"][sample]
            _show(fig, axes[r, c], img, f"{LABELS.get(m, m)}: {title}", "hot")
            records.append(pd.DataFrame({"row": m, "panel": key, "pixel": np.arange(img.size), "value": img.ravel()}))
        img = job["x_adv"][sample, 0]
        _show(fig, axes[r, 3], img, "adversarial input", "gray")
    if not evaluated:
        axes[0, 0].set_title(f"no job attacking {src} with maps of {list(paper.evaluated)}", fontsize=8)
    fig.suptitle(paper.title, fontsize=9)
    return save_figure(fig, out_dir, records)
