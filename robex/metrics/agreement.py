"""Does a smoothed network still predict what the model predicts?

beta-smoothing explains the network with every ReLU replaced by softplus(beta) (beta 0.8 in the
smoothed-explanations paper), which is a different function; the paper asks how often its top-1
class stays the model's. :class:`SmoothedTop1Agreement` answers per image (1 = same class), so its
mean is the share and its standard error the binomial one.
"""
from __future__ import annotations

import torch

from robex.metrics.base import Metric, MetricInfo
from robex.models.transforms import beta_smoothed


class SmoothedTop1Agreement(Metric):
    """1 where argmax of the beta-smoothed network equals the model's argmax on the clean image, else 0."""

    info = MetricInfo(kind="model", higher_is_better=True, range=(0.0, 1.0),
                      citation="Dombrowski et al. 2019 (beta-smoothing); the smoothed-explanations paper, Sec. 3")

    def __init__(self, beta: float = 0.8, batch_size: int = 256):
        self.beta, self.batch_size = float(beta), int(batch_size)
        beta_smoothed(torch.nn.Identity(), self.beta)  # beta <= 0: one-line error at build time

    def params(self) -> dict:
        return {"beta": self.beta}

    def __call__(self, inputs):
        model, x = inputs.model, inputs.x
        smooth, same = beta_smoothed(model, self.beta), []
        with torch.no_grad():
            for s in range(0, len(x), self.batch_size):
                xb = x[s:s + self.batch_size]
                same.append((smooth(xb).argmax(1) == model(xb).argmax(1)).float())
        return torch.cat(same)
