"""Class sensitivity of explanations (the smoothed-explanations paper, Table 1 and Fig. 3): on images
with two objects, does the map of each object's class point at that object?

Data: a data set with two objects per test image, ``extras['test_masks']`` (N, 2, H, W) and
``extras['test_class_sets']`` (N, 2, C) (robex/data/coco.py; the two_objects stand-in). The paper's
filter: keep an image when the model's top-1 class belongs to one object ("object 1") and a class of
the other object ("object 2") is among the top ``top_classes`` predictions (20 in the paper; the
highest-ranked such class is object 2's class). For both objects the map of its class is computed and
the share of the map's ``k`` largest values inside that object's mask is recorded
(robex/metrics/localisation.py; k = 20 in the paper).

Rows: ``top_k_in_mask_obj1``, ``top_k_in_mask_obj2`` (mean, se over the kept images, at most
``n_eval`` of them, in data order) and ``images_kept`` / ``images_seen`` (how many passed the
filter). With ``n_gallery`` > 0: arrays of the first kept images, their masks and both maps (Fig. 3).
"""
from __future__ import annotations

import torch
from hydra.utils import instantiate

from robex.errors import RobexError
from robex.metrics.localisation import TopKInMask, top_k_share_in_mask
from robex.report.schema import metric_columns
from robex.tasks.common import mean_se
from robex.utils import batches


def pointing_filter(logits: torch.Tensor, class_sets: torch.Tensor, top_classes: int):
    """(keep (N,) bool, first (N,) object index 0/1 holding the top-1 class, class1 (N,), class2 (N,))."""
    order = logits.argsort(1, descending=True)[:, :top_classes]          # (N, T)
    top1 = order[:, 0]
    rows = torch.arange(len(logits), device=logits.device)
    has_top1 = class_sets[rows, :, top1]                                   # (N, 2): holds the top-1 class
    first = torch.where(has_top1[:, 0], 0, 1)
    other = 1 - first
    other_sets = class_sets[rows, other]                                   # (N, C)
    in_top = other_sets.gather(1, order)                                   # (N, T): rank r is obj 2's
    found = in_top.any(1)
    rank2 = torch.where(found, in_top.float().argmax(1), torch.zeros_like(top1))
    class2 = order[rows, rank2]
    keep = has_top1.any(1) & ~has_top1.all(1) & found
    return keep, first, top1, class2


class ClassSensitivityTask:
    def __init__(self, name: str = "class_sensitivity", k: int = 20, top_classes: int = 20,
                 n_gallery: int = 0, batch_size: int = 50):
        if int(k) < 1 or int(top_classes) < 2:
            raise RobexError(f"task {name}: k >= 1 and top_classes >= 2 required (got {k}, {top_classes})")
        self.name, self.k, self.top_classes = name, int(k), int(top_classes)
        self.n_gallery, self.batch_size = int(n_gallery), int(batch_size)

    def __call__(self, ctx):
        data = ctx.data()
        masks, sets = data.extras.get("test_masks"), data.extras.get("test_class_sets")
        if masks is None or sets is None or masks.dim() != 4 or masks.shape[1] != 2:
            raise RobexError(f"task {self.name} needs a data set with two object masks per image "
                             f"(dataset=two_objects or coco_two_objects); dataset={data.name} has none")
        model = ctx.defended_model()
        explainer = instantiate(ctx.cfg.explainer)
        x_all = data.test_x
        with torch.no_grad():
            logits = torch.cat([model(x_all[s].to(ctx.device)).cpu() for s in batches(len(x_all), 200)])
        keep, first, class1, class2 = pointing_filter(logits, sets, min(self.top_classes, logits.shape[1]))
        idx = keep.nonzero().flatten()[: int(ctx.cfg.n_eval)]
        if len(idx) == 0:
            raise RobexError(f"task {self.name}: no test image passed the filter (top-1 = one object's class, "
                             f"the other object's class within the top {self.top_classes})")
        m1 = masks[idx, first[idx]]
        m2 = masks[idx, 1 - first[idx]]
        x = x_all[idx].to(ctx.device)
        maps1, maps2 = [], []
        for s in batches(len(idx), self.batch_size):
            maps1.append(explainer(model, x[s], class1[idx][s].to(ctx.device)).cpu())
            maps2.append(explainer(model, x[s], class2[idx][s].to(ctx.device)).cpu())
        h1, h2 = torch.cat(maps1), torch.cat(maps2)
        rows = []
        for metric, h, m in (("top_k_in_mask_obj1", h1, m1), ("top_k_in_mask_obj2", h2, m2)):
            mean, se, n = mean_se(top_k_share_in_mask(h, m, self.k))
            rows.append(ctx.row(metric, mean, se, n, **metric_columns(TopKInMask(self.k))))
        rows.append(ctx.row("images_kept", float(keep.sum()), n=len(keep)))
        rows.append(ctx.row("images_seen", float(len(keep)), n=len(keep)))
        if not self.n_gallery:
            return rows
        g = slice(0, self.n_gallery)
        arrays = {"inputs": x[g].cpu().numpy(), "mask_obj1": m1[g].numpy(), "mask_obj2": m2[g].numpy(),
                  "map_obj1": h1[g].numpy(), "map_obj2": h2[g].numpy(),
                  "class_obj1": class1[idx][g].numpy(), "class_obj2": class2[idx][g].numpy()}
        return rows, arrays
