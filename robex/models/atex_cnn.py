"""The ATEX paper's classifier: two conv and two fully connected layers with softplus."""
from __future__ import annotations

from torch import nn

from robex.models.layers import BetaSoftplus


def atex_cnn(name: str = "atex_cnn", in_channels: int = 1, num_classes: int = 10, image_size: int = 28,
             channels: int = 32, hidden: int = 120, beta: float = 10.0) -> nn.Sequential:
    """Conv(3x3, pad 1) -> softplus -> MaxPool 2 -> Conv(3x3, pad 1) -> softplus -> MaxPool 2 ->
    Linear(hidden) -> softplus -> Linear(num_classes), as in the authors' code (DefIntpMan/ATEX)
    but with softplus(beta) everywhere, as the paper specifies."""
    side = image_size // 4
    net = nn.Sequential(
        nn.Conv2d(in_channels, channels, 3, padding=1), BetaSoftplus(beta), nn.MaxPool2d(2),
        nn.Conv2d(channels, channels, 3, padding=1), BetaSoftplus(beta), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(channels * side * side, hidden), BetaSoftplus(beta),
        nn.Linear(hidden, num_classes),
    )
    net.name = name
    return net
