"""A small VGG-style network that robex trains itself: the offline stand-in for VGG16 (see
``robex.models.pretrained`` for the real torchvision models)."""
from __future__ import annotations

from torch import nn


def vgg_small(name: str = "vgg_small", in_channels: int = 1, num_classes: int = 10, image_size: int = 28,
              widths: tuple[int, int] = (16, 32), hidden: int = 128) -> nn.Sequential:
    """VGG-style stand-in: two blocks of (3x3 conv, ReLU) x 2 + 2x2 max-pool, then FC-ReLU-FC.
    A plain nn.Sequential of ReLU layers (swappable to softplus for attacks)."""
    c1, c2 = widths
    side = image_size // 4
    net = nn.Sequential(
        nn.Conv2d(in_channels, c1, 3, padding=1), nn.ReLU(), nn.Conv2d(c1, c1, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.Conv2d(c2, c2, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(c2 * side * side, hidden), nn.ReLU(), nn.Linear(hidden, num_classes),
    )
    net.name = name
    return net
