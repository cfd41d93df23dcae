"""Per-channel input normalisation as the first layer of a model (images stay in [0,1] outside)."""
from __future__ import annotations

import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Normalize(nn.Module):
    def __init__(self, mean=IMAGENET_MEAN, std=IMAGENET_STD):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def bounds(self, low: float = 0.0, high: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
        """The valid input range [low, high] mapped into the normalised space (per channel)."""
        return (low - self.mean) / self.std, (high - self.mean) / self.std
