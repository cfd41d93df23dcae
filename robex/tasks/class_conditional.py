"""Class-conditional explanations (the RelEx paper, Fig. 6): for every class c, the map of class c,
used as a mask, should keep class c: softmax_c(m_c * x) near 1 for every c, on clean images and on
attacked ones.

For the first ``n_eval`` test images whose label is ``image_class`` (null: any label), the job's
attack makes x' (``attack=pgd``: against the clean prediction); for each class c the explainer's map
of class c on x and on x' (the explainer's normaliser must give a mask in [0, 1]: RelEx's raw mask,
``*_p99``, ``*_minmax``) masks its image to the mean colour, and the row ``class_softmax_clean`` /
``class_softmax_attacked`` (step = c, ``metric_params`` class=c) is the mean over images of
softmax_c of the masked image.
"""
from __future__ import annotations

import torch
from hydra.utils import instantiate

from robex.errors import RobexError
from robex.explainers.relex import fill_colour
from robex.metrics.retrieval import masked
from robex.tasks.common import explanation_target, mean_se


class ClassConditionalTask:
    def __init__(self, name: str = "class_conditional", image_class: int | None = None, batch_size: int = 100):
        self.name, self.batch_size = name, int(batch_size)
        self.image_class = None if image_class is None else int(image_class)

    def _images(self, ctx):
        data = ctx.data()
        n = int(ctx.cfg.n_eval)
        keep = torch.arange(len(data.test_y)) if self.image_class is None else \
            torch.nonzero(data.test_y == self.image_class).flatten()
        if len(keep) < n:
            raise RobexError(f"task class_conditional: {data.name} has {len(keep)} test images of class "
                             f"{self.image_class}, fewer than n_eval={n}")
        keep = keep[:n]
        return data.test_x[keep].to(ctx.device), data.test_y[keep].to(ctx.device)

    def __call__(self, ctx):
        model = ctx.defended_model()
        explainer = instantiate(ctx.cfg.explainer)
        attack = ctx.attack()
        x, y = self._images(ctx)
        clean_pred = explanation_target(model, x, y, "prediction")
        images = "first n_eval" if self.image_class is None else f"first n_eval of class {self.image_class}"
        x_adv = ctx.attack_result(attack, explainer, ctx.cfg.explainer, model, x, clean_pred, images=images,
                                  target_kind="prediction").x_adv
        with torch.no_grad():
            n_classes = model(x[:1]).shape[1]
        rows = []
        for metric, images in (("class_softmax_clean", x), ("class_softmax_attacked", x_adv)):
            fill = fill_colour(model, images, "auto")
            for c in range(n_classes):
                target = torch.full((len(images),), c, dtype=torch.long, device=images.device)
                m = explainer(model, images, target)
                if m.min() < 0 or m.max() > 1:
                    raise RobexError(f"task class_conditional needs masks in [0, 1] from explainer {explainer.name}: "
                                     "choose an option with a mask normaliser (relex, *_p99, *_minmax)")
                with torch.no_grad():
                    probs = torch.cat([model(masked(images[s:s + self.batch_size], m[s:s + self.batch_size],
                                                    fill if fill.shape[0] == 1 else fill[s:s + self.batch_size]))
                                       .softmax(1)[:, c] for s in range(0, len(images), self.batch_size)])
                value, se, n = mean_se(probs.cpu())
                rows.append(ctx.row(metric, value, se, n, step=c, step_axis="class", metric_params=f"class={c}",
                                    higher_is_better=True))
        return rows
