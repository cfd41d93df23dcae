"""robex: reproduce and stress-test saliency-explanation robustness results.

Parts (each importable on its own): ``robex.data``, ``robex.models``, ``robex.explainers``,
``robex.attacks``, ``robex.defenses``, ``robex.metrics``, ``robex.tasks``, ``robex.report``.
``robex.pipeline.run(cfg)`` is what ``run.py`` calls.
"""

__version__ = "0.1.0"
