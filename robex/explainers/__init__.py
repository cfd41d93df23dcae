"""Explanation methods. Every explainer is a callable ``(model, x, target) -> map``: its raw
attribution (:meth:`Explainer.attribute`) passed through its normaliser (:mod:`robex.normalisers`).
The options users pick are the files of ``conf/explainer/``; tests enumerate those files."""
from robex.explainers.aggregate import AggMean, AggVar
from robex.explainers.base import Explainer
from robex.explainers.gradcam import GradCAM
from robex.explainers.gradient import Gradient
from robex.explainers.gradient_x_input import GradientXInput
from robex.explainers.guided_backprop import GuidedBackprop
from robex.explainers.integrated_gradients import IntegratedGradients
from robex.explainers.lrp import LRP
from robex.explainers.noise_tunnel import NoiseTunnel, SmoothGrad, UniformGradient

__all__ = ["Explainer", "AggMean", "AggVar", "GradCAM", "Gradient", "GradientXInput", "GuidedBackprop",
           "IntegratedGradients", "LRP", "NoiseTunnel", "SmoothGrad", "UniformGradient"]
