"""AGG-Mean's experiments: a targeted map attack on one explainer (``cfg.explainer``), evaluated with
that explainer and with every explainer of ``evaluate`` (transferability).

Pairs: image i of the first ``n_pairs`` test images gets as target the explanation of test image
``target_offset + i`` (for its own predicted class), so a run with fewer pairs uses a subset of the
same pairs. The attack explains f's predicted class at x.

Rows (mean and standard error over the pairs), ``explainer`` = the explainer evaluated and
``attacked_explainer`` = the one attacked (the job's explainer):
- target ``other_image``: ``mse_delta``, ``pcc_delta``, ``topk_delta`` (top 10% of pixels), plus
  ``image_mse`` and ``label_kept`` for the attacked explainer;
- target ``blank_square``: ``mass_before``, ``mass_after`` (relevance inside the centred square) and
  ``mass_kept`` (after / before, per sample).
Arrays: every per-sample value (``<evaluator>__<metric>``) for the scatter figures, and the images
and maps of the first ``keep_maps`` pairs for the visual grid. Every row also keeps its per-pair
values (:mod:`robex.report.samples`), so the claims pair two explainers attacked on the same pairs.
"""
from __future__ import annotations

import numpy as np
import torch
from hydra.utils import instantiate

from robex.attacks.targeted_map import centre_square_mask
from robex.errors import RobexError
from robex.metrics.attack_success import image_mse, mass_inside, similarity_deltas
from robex.report.samples import attach
from robex.tasks.common import mean_se


class TargetedMapTask:
    def __init__(self, evaluate, name: str = "map_manipulation", n_pairs: int = 100, target_offset: int = 100,
                 top_fraction: float = 0.1, keep_maps: int = 4):
        self.name = name
        self.evaluate = evaluate  # {name: explainer config}
        self.n_pairs, self.offset = int(n_pairs), max(int(target_offset), int(n_pairs))
        self.top_fraction, self.keep_maps = float(top_fraction), int(keep_maps)

    def __call__(self, ctx):
        cfg = ctx.cfg
        model = ctx.defended_model()
        data = ctx.data()
        n, off = self.n_pairs, self.offset
        if off + n > len(data.test_y):
            raise RobexError(f"n_pairs={n} with target_offset={off} needs {off + n} test images; "
                             f"{data.name} has {len(data.test_y)}")
        x, x_t = data.test_x[:n].to(ctx.device), data.test_x[off:off + n].to(ctx.device)
        with torch.no_grad():
            cls, cls_t = model(x).argmax(1), model(x_t).argmax(1)
        attacked = instantiate(cfg.explainer)
        attack = ctx.attack()
        evaluators = {attacked.name: attacked}
        for key, node in (self.evaluate or {}).items():
            if key != attacked.name:
                evaluators[key] = instantiate(node)
        h_target = attacked(model, x_t, cls_t) if attack.target == "other_image" else None
        res = attack(model, attacked, x, cls, h_target=h_target)
        # score direction for robustness (the change the attack achieved; attack facts have none)
        directions = {"mse_delta": {"higher_is_better": True},
                      "pcc_delta": {"higher_is_better": False},
                      "topk_delta": {"higher_is_better": False, "metric_params": f"top_fraction={self.top_fraction:g}"},
                      "mass_kept": {"higher_is_better": True}}
        rows, arrays = [], {"attacked": np.array(attacked.name), "x": x[: self.keep_maps].cpu().numpy(), "x_adv": res.x_adv[: self.keep_maps].cpu().numpy(),
                            "x_target": x_t[: self.keep_maps].cpu().numpy()}
        per_sample = {}
        if attack.target == "blank_square":
            mask = centre_square_mask(*x.shape[-2:], attack.square_fraction).to(x)
        for name, ev in evaluators.items():
            h_start, h_adv = ev(model, x, cls), ev(model, res.x_adv, cls)
            if attack.target == "other_image":
                h_tgt = h_target if name == attacked.name else ev(model, x_t, cls_t)
                values = similarity_deltas(h_tgt, h_start, h_adv, self.top_fraction)
                arrays[f"{name}__map_target"] = h_tgt[: self.keep_maps].cpu().numpy()
            else:
                before, after = mass_inside(h_start, mask), mass_inside(h_adv, mask)
                values = {"mass_before": before, "mass_after": after, "mass_kept": after / before.clamp_min(1e-30)}
            if name == attacked.name:
                values["image_mse"] = image_mse(x, res.x_adv)
                values["label_kept"] = res.facts["label_kept"].float()
                values["linf"] = res.facts["linf"]
            arrays[f"{name}__map_start"] = h_start[: self.keep_maps].cpu().numpy()
            arrays[f"{name}__map_adv"] = h_adv[: self.keep_maps].cpu().numpy()
            for metric, v in values.items():
                v = v.float().cpu()
                per_sample[f"{name}__{metric}"] = v.numpy()
                m, se, cnt = mean_se(v)
                rows.append(attach(ctx.row(metric, m, se, cnt, explainer=name, **directions.get(metric, {})), v.numpy()))
        arrays.update(per_sample)
        return rows, arrays
