"""CIFAR-10 from the python-pickle batches torchvision downloads (``cifar-10-batches-py``).

Layout: ``<root>/cifar-10-batches-py/{data_batch_1..5, test_batch}`` (or those files directly in
``root``), each a pickle with ``data`` (N, 3072) uint8 in channel-major order and ``labels``.
Nothing is downloaded: the machines robex is built on have no internet, so a missing folder is one
line naming it and the files expected (``torchvision.datasets.CIFAR10(root, download=True)`` on a
machine online puts them there). Images stay in [0, 1]; normalisation is inside the model.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from robex.data.base import ImageData, split_train_val
from robex.errors import RobexError

TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST = ("test_batch",)
SUBDIR = "cifar-10-batches-py"


def _batch_dir(root: str | None) -> Path:
    if not root:
        raise RobexError("dataset=cifar10 needs dataset.root=<folder> holding cifar-10-batches-py/ "
                         "(data_batch_1..5, test_batch; torchvision's download); offline, use the "
                         "stand-in dataset=cfm32")
    for d in (Path(root) / SUBDIR, Path(root)):
        if all((d / f).is_file() for f in TRAIN + TEST):
            return d
    missing = [f for f in TRAIN + TEST if not (Path(root) / SUBDIR / f).is_file()]
    where = "does not exist" if not Path(root).exists() else f"lacks {', '.join(missing)}"
    raise RobexError(f"CIFAR-10 not found: dataset.root={root} {where}: put cifar-10-batches-py/ "
                     f"(data_batch_1..5, test_batch) in it (torchvision.datasets.CIFAR10(root, "
                     f"download=True) on a machine with internet), or use the stand-in dataset=cfm32")


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as f:
            d = pickle.load(f, encoding="bytes")
        data = np.asarray(d[b"data"] if b"data" in d else d["data"], dtype=np.uint8)
        labels = np.asarray(d[b"labels"] if b"labels" in d else d["labels"], dtype=np.int64)
    except Exception as exc:
        raise RobexError(f"{path} cannot be read as a CIFAR-10 batch ({type(exc).__name__}: {exc}): "
                         f"replace it with an intact copy") from None
    if data.ndim != 2 or data.shape[1] != 3072 or len(data) != len(labels):
        raise RobexError(f"{path} is not a CIFAR-10 batch (data {data.shape}, {len(labels)} labels)")
    return data.reshape(-1, 3, 32, 32), labels


def load_cifar10(name: str = "cifar10", root: str | None = None, val_size: int = 5000, split_seed: int = 0,
                 train_epochs: int = 30) -> ImageData:
    """50k/10k; the 50k training images split into train / val (seeded)."""
    d = _batch_dir(root)
    parts = [_read_batch(d / f) for f in TRAIN]
    x = torch.from_numpy(np.concatenate([p[0] for p in parts])).float().div_(255.0)
    y = torch.from_numpy(np.concatenate([p[1] for p in parts]))
    tx, ty, vx, vy = split_train_val(x, y, val_size, split_seed)
    test_x, test_y = _read_batch(d / TEST[0])
    return ImageData(name, str(d), tx, ty, vx, vy, torch.from_numpy(test_x).float().div_(255.0),
                     torch.from_numpy(test_y), num_classes=10, default_epochs=train_epochs)


def _cifar_files(root: str | None = None) -> list[Path]:
    d = _batch_dir(root)
    return [d / f for f in TRAIN + TEST]


load_cifar10.locate = _cifar_files
