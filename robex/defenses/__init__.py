"""Defenses: transformations of a trained model (fine-tuning). Each defense is an object built from
its config with ``stages`` cacheable steps; ``apply_stage(i, teacher, model, data)`` runs step i
(1-based) on ``model`` in place. The pipeline caches the model after every stage. ``budget`` is the
defense's own magnitude (ATEX's eps1, adversarial training's eps; NaN for none), recorded in every
row as ``defense_budget``."""
