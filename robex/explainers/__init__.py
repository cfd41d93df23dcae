"""Explanation methods. Every explainer is a callable ``(model, x, target) -> heatmap`` where the
heatmap follows the one normalisation convention of :func:`robex.explainers.base.heatmap`."""
from robex.explainers.base import Explainer, heatmap

__all__ = ["Explainer", "heatmap"]
