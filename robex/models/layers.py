"""Activation modules whose smoothness can be changed at run time."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class BetaSoftplus(nn.Module):
    """softplus(beta * z) / beta. ``beta`` is a plain attribute so schedules can change it in place;
    beta -> infinity approaches ReLU."""

    def __init__(self, beta: float = 1.0):
        super().__init__()
        self.beta = float(beta)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return F.softplus(z, beta=self.beta, threshold=20.0)

    def derivative(self, z: torch.Tensor) -> torch.Tensor:
        """d softplus / dz = sigmoid(beta z)."""
        return torch.sigmoid(self.beta * z)

    def extra_repr(self) -> str:
        return f"beta={self.beta:g}"
