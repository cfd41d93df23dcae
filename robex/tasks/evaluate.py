"""The generic evaluation: model -> explain -> (attack) -> explain -> metrics from config.

For the job's (defended) model: its clean test accuracy; then, on the first ``n_eval`` test images,
the explainer's map of x (class: the true ``label`` or the model's ``prediction``; its raw
attribution cached across jobs by :meth:`robex.pipeline.Context.clean_attribution`), the attack
(``attack=none`` leaves x unchanged; its result cached across jobs that score other explainers on
the same attack, :meth:`robex.pipeline.Context.attack_result`), the map of the attacked x', and every metric of ``metrics``
(a dict name -> metric config, see :mod:`robex.metrics.base`):

- ``pair`` metrics compare the clean and the attacked map (row ``<name>``);
- ``map`` metrics score the clean map (row ``<name>``) and, under an attack, the attacked map
  (row ``<name>_attacked``);
- ``model`` metrics receive the model, inputs and targets as well; a metric whose class sets
  ``uses_attribution`` (infidelity) also gets the explainer's raw attribution of x
  (``extra["attribution"]``, x's shape; a stochastic explainer with ``seed: null`` draws it afresh);
- ``target`` metrics compare a targeted map attack's target map with the attacked map (row
  ``<name>``) and with the clean map (row ``<name>_start``: where the attack began); the target
  map they score against is the job's explainer's map of the target image (under a transfer
  attack the attack steers towards the attacked explainer's own target map);
- ``image`` metrics compare x with the attacked x' (LPIPS, 1 - SSIM, L2).
A metric that cannot be computed here (``unavailable``: LPIPS without its ImageNet weights) writes
one ``<name>_unavailable`` row (value NaN, n 0, the reason in ``metric_params``) instead of a value.

With ``attack_explainer`` (an explainer config node) the attack fools that explainer instead of
the job's, and the job's explainer is evaluated on the result (transfer; rows record it in
``attacked_explainer``). A targeted map attack towards another image's map (``target: other_image``) gets, for image i,
the map of test image n_eval + i. With ``keep_maps`` k > 0 the job also returns figure arrays for its first k images: inputs,
attacked inputs, both maps (and a targeted attack's target maps), the class and its softmax
probability on x and x'. The attack's own
per-sample facts (``label_kept``, ``linf``, ``objective_before``,
``objective_after``) are rows too. Each row is a mean with its standard error over the images; a
sample whose value is NaN is not averaged, and the number of such samples is its own row
(``<name>__nan``) whenever it is not zero, so nothing is dropped silently. The metrics' rows also
keep their per-image values (:mod:`robex.report.samples`), so the claims engine can pair two jobs
scored on the same images.
"""
from __future__ import annotations

import torch
from hydra.utils import instantiate

from robex.errors import RobexError
from robex.metrics.base import Metric, MetricInputs
from robex.tasks.common import eval_subset, explanation_target, summary_rows


class EvaluateTask:
    def __init__(self, metrics, name: str = "evaluate", target: str = "label", attack_explainer=None,
                 keep_maps: int = 0):
        self.name = name
        self.target = target
        self.attack_explainer = attack_explainer
        self.keep_maps = int(keep_maps)
        self.metrics: dict[str, Metric] = dict(metrics or {})
        if not self.metrics:
            raise RobexError("task.metrics is empty: name at least one metric")
        for key, m in self.metrics.items():
            if not isinstance(m, Metric):
                raise RobexError(f"task.metrics.{key} is not a robex metric (got {type(m).__name__})")

    @staticmethod
    def _target_images(ctx, model, attack, n: int):
        """A targeted map attack with ``target: other_image`` steers image i towards the map of test
        image n_eval + i (for its own predicted class), as robex's map-manipulation task does:
        (images, classes), or None for any other attack."""
        if getattr(attack, "target", None) != "other_image":
            return None
        data = ctx.data()
        if len(data.test_y) < 2 * n:
            raise RobexError(f"attack {attack.name} target=other_image needs 2 x n_eval = {2 * n} test images; "
                             f"{data.name} has {len(data.test_y)}")
        x_t = data.test_x[n:2 * n].to(ctx.device)
        with torch.no_grad():
            cls_t = model(x_t).argmax(1)
        return x_t, cls_t

    def __call__(self, ctx) -> list[dict]:
        cfg = ctx.cfg
        stages = ctx.defense(cfg.defense).stages
        model = ctx.defended_model()
        explainer = instantiate(cfg.explainer)
        attack = ctx.attack()
        n_acc = int(cfg.get("accuracy_limit") or len(ctx.data().test_y))
        columns = {"step": stages}
        if self.attack_explainer is not None and getattr(attack, "on_explanation", False):
            columns["attacked_explainer"] = self.attack_explainer.name
        rows = [ctx.row("accuracy", ctx.test_accuracy(model), n=n_acc, **columns)]
        x, y = eval_subset(ctx)
        target = explanation_target(model, x, y, self.target)
        h_clean = explainer.normalise(ctx.clean_attribution(explainer, model, x, target, self.target)).detach()
        fooled = self.attack_explainer or explainer  # transfer: the attack fools another explainer
        targets = self._target_images(ctx, model, attack, len(x))
        h_target = h_target_fooled = None
        if targets is not None:
            h_target_fooled = fooled(model, *targets)
            h_target = h_target_fooled if fooled is explainer else explainer(model, *targets)
        fooled_cfg = cfg.task.get("attack_explainer") or cfg.explainer
        result = ctx.attack_result(attack, fooled, fooled_cfg, model, x, target, images="first n_eval",
                                   target_kind=self.target,
                                   **({} if targets is None else {"h_target": h_target_fooled}))
        h_adv = explainer(model, result.x_adv, target)
        extra = {}
        if any(getattr(m, "uses_attribution", False) for m in self.metrics.values()):  # infidelity
            extra["attribution"] = explainer.attribute(model, x, target).detach()
        inputs = MetricInputs(h_clean=h_clean, h_adv=h_adv, h_target=h_target, x=x, x_adv=result.x_adv,
                              model=model, target=target, labels=y, extra=extra)
        per_sample, unavailable = {}, []
        attacked = getattr(attack, "name", "none") != "none"
        for key, metric in self.metrics.items():
            if metric.unavailable:
                unavailable.append(ctx.row(f"{key}_unavailable", float("nan"), n=0,
                                           metric_params=f"reason={metric.unavailable}", **columns))
                continue
            per_sample[key] = metric(inputs)
            if metric.info.kind == "map" and attacked:
                per_sample[f"{key}_attacked"] = metric(MetricInputs(h_clean=h_adv))
            if metric.info.kind == "target":
                per_sample[f"{key}_start"] = metric(MetricInputs(h_clean=h_clean, h_adv=h_clean, h_target=h_target))
        per_sample.update(result.facts)
        rows = rows + summary_rows(ctx, per_sample, metrics=self.metrics, samples=True, **columns) + unavailable
        if not self.keep_maps:
            return rows
        k = self.keep_maps
        with torch.no_grad():
            p_clean = model(x[:k]).softmax(1).gather(1, target[:k].view(-1, 1)).squeeze(1)
            p_adv = model(result.x_adv[:k]).softmax(1).gather(1, target[:k].view(-1, 1)).squeeze(1)
        arrays = {"inputs": x[:k].cpu().numpy(), "inputs_adv": result.x_adv[:k].cpu().numpy(),
                  "maps": h_clean[:k].cpu().numpy(), "maps_adv": h_adv[:k].cpu().numpy(),
                  "target": target[:k].cpu().numpy(), "p_clean": p_clean.cpu().numpy(),
                  "p_adv": p_adv.cpu().numpy()}
        if h_target is not None:
            arrays["maps_target"] = h_target[:k].cpu().numpy()
        return rows, arrays
