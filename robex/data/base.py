"""The in-memory dataset container shared by all loaders."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass
class ImageData:
    """Images in [0,1] as float32 (N, C, H, W) tensors, labels as int64 (N,)."""

    name: str
    source: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    num_classes: int
    default_epochs: int = 2  # training epochs used when train.epochs is null
    extras: dict = field(default_factory=dict)  # e.g. "test_masks": human annotation masks

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.test_x.shape[1:])

    def describe(self) -> str:
        return (f"{self.name} [{self.source}]: train {len(self.train_y)}, val {len(self.val_y)}, "
                f"test {len(self.test_y)}")


def split_train_val(x: torch.Tensor, y: torch.Tensor, val_size: int, seed: int):
    """Seeded random split of a training set into (train_x, train_y, val_x, val_y)."""
    if not 0 <= val_size < len(y):
        from robex.errors import RobexError

        raise RobexError(f"val_size={val_size} must be in [0, {len(y)})")
    perm = torch.from_numpy(np.random.default_rng(seed).permutation(len(y)))
    val, train = perm[:val_size], perm[val_size:]
    return x[train], y[train], x[val], y[val]


def to_float_images(array: np.ndarray, height: int, width: int, scale: float = 255.0) -> torch.Tensor:
    """uint8-like (N, H*W) or (N, H, W) array -> float32 (N, 1, H, W) tensor in [0,1]."""
    t = torch.from_numpy(np.ascontiguousarray(array)).float().div_(scale)
    return t.reshape(-1, 1, height, width)
