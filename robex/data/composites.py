"""Offline STAND-INS built from real data: FashionMNIST items, coloured, on crops of the natural
photographs that scikit-image ships. Every title, row and claim that uses them says "stand-in".

- ``cfm32`` stands in for CIFAR-10: 32x32 colour images, a textured natural background, 10 classes.
- ``two_objects`` stands in for the COCO two-object images of the class-sensitivity (pointing)
  test: 64x64 canvases with two items of different classes and one exact mask per item. Its train
  and val splits hold ONE item per canvas (label = its class), so a model trained on them has never
  seen two objects; its test split holds two, with ``extras["test_masks"]`` (N, 2, H, W) bool,
  ``extras["test_classes"]`` (N, 2) and ``extras["test_class_sets"]`` (N, 2, 10) bool, the same
  extras as the real COCO loader (robex/data/coco.py), whose objects map to SETS of ImageNet classes.

The recipe (``RECIPE``, version 1), per item, every draw from one seeded generator per split:

1. background: one of :data:`BACKGROUNDS` (uniformly); a uniformly placed square crop of
   ``z * size`` photo pixels (z uniform in [``zoom_min``, ``zoom_max``], at most the photo's
   shorter side), area-downsampled to ``size``; grey photographs get a random tint; dimmed by 0.7;
2. item: the FashionMNIST image v in [0, 1] (28x28; resized to ``item_size`` when that differs),
   its colour c drawn in HSV (hue uniform, saturation in [0.5, 1], value in [0.7, 1]), shaded
   as c * (0.35 + 0.65 v);
3. blend: alpha = clip(2 v, 0, 1); x = alpha * item + (1 - alpha) * background; the item's mask
   is alpha > 0.25 (the object's exact pixels); it is placed with a random offset of up to
   ``jitter`` pixels from the centre (cfm32) or of its half of the canvas (two_objects).

Built once per setting and cached as uint8 (``<cache_dir>/data/<name>-<key>.npz``, written
atomically); the key covers the recipe, the settings and the fingerprint of the files read.
"""
from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from robex.data.base import ImageData, split_train_val
from robex.data.idx import read_idx
from robex.data.identity import fingerprint
from robex.data.mnist_like import _FILES, DEBIAN_FASHION_MNIST, _fashion_dir, _find
from robex.errors import RobexError
from robex.utils import atomic_write_bytes

RECIPE = 1
# natural photographs bundled with scikit-image (no download): colour ones, then grey textures
BACKGROUNDS = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "hubble_deep_field.jpg",
               "ihc.png", "motorcycle_left.png", "brick.png", "grass.png", "gravel.png")


def _skimage_dir() -> Path:
    import skimage.data

    return Path(skimage.data.__file__).parent


def background_files() -> list[Path]:
    return [_skimage_dir() / name for name in BACKGROUNDS]


def _photos() -> list[torch.Tensor]:
    """The background photographs as float (3, H, W) tensors in [0, 1]; grey ones replicated."""
    from skimage.io import imread

    out = []
    for path in background_files():
        if not path.is_file():
            raise RobexError(f"{path} is missing: the stand-in backgrounds come with scikit-image "
                             f"(pip install scikit-image==0.26.0)")
        a = imread(str(path))
        a = np.repeat(a[..., None], 3, axis=2) if a.ndim == 2 else a[..., :3]
        out.append(torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1).float() / 255.0)
    return out


def _hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(N,) arrays in [0, 1] -> (N, 3) RGB."""
    k = (np.array([5.0, 3.0, 1.0])[None, :] + h[:, None] * 6.0) % 6.0
    return v[:, None] - v[:, None] * s[:, None] * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)


def _backgrounds(rng: np.random.Generator, n: int, size: int, photos: list[torch.Tensor],
                 zoom: tuple[float, float]) -> torch.Tensor:
    """(n, 3, size, size) background crops (step 1 of the recipe)."""
    which = rng.integers(0, len(photos), n)
    z = rng.uniform(zoom[0], zoom[1], n)  # photo pixels per output pixel
    tint = _hsv_to_rgb(rng.uniform(0, 1, n), rng.uniform(0.2, 0.6, n), np.ones(n))
    fx, fy = rng.uniform(0, 1, n), rng.uniform(0, 1, n)
    out = torch.empty(n, 3, size, size)
    for i in range(n):
        photo = photos[which[i]]
        _, h, w = photo.shape
        crop = min(int(round(z[i] * size)), h, w)
        top, left = int(fy[i] * (h - crop)), int(fx[i] * (w - crop))
        patch = photo[:, top:top + crop, left:left + crop].unsqueeze(0)
        patch = F.interpolate(patch, size=(size, size), mode="area")[0]
        if bool((photo[0] == photo[1]).all()):  # a grey photograph: tint it
            patch = patch * torch.from_numpy(tint[i]).float().view(3, 1, 1)
        out[i] = patch
    return out * 0.7


def _items(rng: np.random.Generator, v: torch.Tensor, item_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, 3, s, s) coloured, shaded items and their (n, 1, s, s) alpha (step 2 of the recipe)."""
    n = len(v)
    if v.shape[-1] != item_size:
        v = F.interpolate(v, size=(item_size, item_size), mode="bilinear", align_corners=False).clamp(0, 1)
    colour = _hsv_to_rgb(rng.uniform(0, 1, n), rng.uniform(0.5, 1.0, n), rng.uniform(0.7, 1.0, n))
    c = torch.from_numpy(colour).float().view(n, 3, 1, 1)
    return c * (0.35 + 0.65 * v), (2.0 * v).clamp(0.0, 1.0)


def _paste(canvas: torch.Tensor, item: torch.Tensor, alpha: torch.Tensor, tops, lefts) -> torch.Tensor:
    """Blend each item onto its canvas at (top, left) in place; return the (n, H, W) bool masks."""
    n, _, s, _ = item.shape
    masks = torch.zeros(n, canvas.shape[-2], canvas.shape[-1], dtype=torch.bool)
    for i in range(n):
        t, l = int(tops[i]), int(lefts[i])
        region = canvas[i, :, t:t + s, l:l + s]
        canvas[i, :, t:t + s, l:l + s] = alpha[i] * item[i] + (1 - alpha[i]) * region
        masks[i, t:t + s, l:l + s] = alpha[i, 0] > 0.25
    return masks


def _fashion_arrays(root, system_dir) -> dict[str, np.ndarray]:
    directory = _fashion_dir(root, system_dir)
    return {key: read_idx(_find(directory, stem)) for key, stem in _FILES.items()}


def _cached(name: str, settings: dict, files: list[Path], cache_dir, build) -> dict[str, np.ndarray]:
    """The built arrays from ``<cache_dir>/data``, or build and store them (atomic write)."""
    key = hashlib.sha256(json.dumps({"recipe": RECIPE, "name": name, **settings,
                                     "files": fingerprint(files)}, sort_keys=True).encode()).hexdigest()[:16]
    path = Path(cache_dir) / "data" / f"{name}-{key}.npz" if cache_dir else None
    if path is not None and path.is_file():
        try:
            with np.load(path) as z:
                return {k: z[k] for k in z.files}
        except Exception:  # a damaged cache file is rebuilt, never trusted
            pass
    arrays = build()
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            buf = io.BytesIO()
            np.savez(buf, **arrays)
            atomic_write_bytes(path, buf.getvalue())
        except OSError as exc:
            raise RobexError(f"paths.cache_dir={cache_dir} cannot be written ({exc.strerror or exc}): "
                             f"choose a folder robex may write to") from None
    return arrays


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    return (x.clamp(0, 1) * 255.0).round().to(torch.uint8).numpy()


def _from_uint8(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a).float().div_(255.0)


def _check_sizes(**sizes):
    for k, v in sizes.items():
        if not isinstance(v, int) or v < 1:
            raise RobexError(f"dataset.{k}={v!r} is not allowed: it must be an integer >= 1")


def load_cfm32(name: str = "cfm32", root: str | None = None, system_dir: str | None = str(DEBIAN_FASHION_MNIST),
               train_size: int = 20000, val_size: int = 2000, test_size: int = 5000, seed: int = 0,
               size: int = 32, jitter: int = 2, zoom_min: float = 1.5, zoom_max: float = 6.0,
               cache_dir: str | None = None, train_epochs: int = 10) -> ImageData:
    """The CIFAR-10 STAND-IN (module docstring): FashionMNIST items on natural backgrounds.
    Train / val come from FashionMNIST's training images (a seeded draw), test from its test images."""
    _check_sizes(train_size=train_size, test_size=test_size, size=size)
    if size < 28 + 2 * jitter:
        raise RobexError(f"dataset.size={size} is too small for a 28-pixel item with jitter {jitter}")
    settings = dict(train_size=train_size, val_size=val_size, test_size=test_size, seed=seed, size=size,
                    jitter=jitter, zoom_min=zoom_min, zoom_max=zoom_max)

    def build():
        fm = _fashion_arrays(root, system_dir)
        if train_size + val_size > len(fm["train_y"]) or test_size > len(fm["test_y"]):
            raise RobexError(f"dataset=cfm32 asks for {train_size}+{val_size} training and {test_size} test "
                             f"items; FashionMNIST has {len(fm['train_y'])} and {len(fm['test_y'])}")
        photos, out = _photos(), {}
        for split, (xs, ys, n, offset) in {"train": (fm["train_x"], fm["train_y"], train_size + val_size, 0),
                                           "test": (fm["test_x"], fm["test_y"], test_size, 1)}.items():
            rng = np.random.default_rng([seed, RECIPE, offset])
            pick = np.sort(rng.choice(len(ys), n, replace=False))
            v = torch.from_numpy(xs[pick]).float().div(255.0).unsqueeze(1)
            canvas = _backgrounds(rng, n, size, photos, (zoom_min, zoom_max))
            item, alpha = _items(rng, v, 28)
            centre = (size - 28) // 2
            tops = centre + rng.integers(-jitter, jitter + 1, n)
            lefts = centre + rng.integers(-jitter, jitter + 1, n)
            _paste(canvas, item, alpha, tops, lefts)
            out[f"{split}_x"], out[f"{split}_y"] = _to_uint8(canvas), ys[pick].astype(np.int64)
            out[f"{split}_source_index"] = pick  # the FashionMNIST item of each image (provenance)
        return out

    files = _fashion_files_for(root, system_dir) + background_files()
    a = _cached(name, settings, files, cache_dir, build)
    tx, ty, vx, vy = split_train_val(_from_uint8(a["train_x"]), torch.from_numpy(a["train_y"]), val_size, seed)
    data = ImageData(name, f"STAND-IN for CIFAR-10: FashionMNIST items on skimage photographs (recipe {RECIPE})",
                     tx, ty, vx, vy, _from_uint8(a["test_x"]), torch.from_numpy(a["test_y"]), num_classes=10,
                     default_epochs=train_epochs)
    data.extras["test_source_index"] = torch.from_numpy(a["test_source_index"])
    return data


def load_two_objects(name: str = "two_objects", root: str | None = None,
                     system_dir: str | None = str(DEBIAN_FASHION_MNIST), train_size: int = 20000,
                     val_size: int = 2000, test_size: int = 1000, seed: int = 0, size: int = 64,
                     item_size: int = 28, jitter: int = 3, zoom_min: float = 1.0, zoom_max: float = 4.0,
                     cache_dir: str | None = None, train_epochs: int = 10) -> ImageData:
    """The COCO two-object STAND-IN (module docstring): train / val canvases hold one item anywhere
    on the canvas; test canvases hold two items of different classes, one in each half (left /
    right, in random order), with their exact masks in ``extras``."""
    _check_sizes(train_size=train_size, test_size=test_size, size=size, item_size=item_size)
    if size < 2 * item_size:
        raise RobexError(f"dataset.size={size} cannot hold two {item_size}-pixel items side by side")
    settings = dict(train_size=train_size, val_size=val_size, test_size=test_size, seed=seed, size=size,
                    item_size=item_size, jitter=jitter, zoom_min=zoom_min, zoom_max=zoom_max)

    def build():
        fm = _fashion_arrays(root, system_dir)
        photos, out = _photos(), {}
        # one item per training canvas, anywhere
        n = train_size + val_size
        rng = np.random.default_rng([seed, RECIPE, 10])
        pick = rng.choice(len(fm["train_y"]), n, replace=len(fm["train_y"]) < n)
        canvas = _backgrounds(rng, n, size, photos, (zoom_min, zoom_max))
        item, alpha = _items(rng, torch.from_numpy(fm["train_x"][pick]).float().div(255.0).unsqueeze(1), item_size)
        _paste(canvas, item, alpha, rng.integers(0, size - item_size + 1, n), rng.integers(0, size - item_size + 1, n))
        out["train_x"], out["train_y"] = _to_uint8(canvas), fm["train_y"][pick].astype(np.int64)
        # two items of different classes per test canvas, one per half
        rng = np.random.default_rng([seed, RECIPE, 11])
        ys = fm["test_y"]
        first = rng.choice(len(ys), test_size, replace=len(ys) < test_size)
        second = rng.choice(len(ys), test_size)
        for _ in range(100):  # redraw the second item until its class differs
            same = ys[second] == ys[first]
            if not same.any():
                break
            second[same] = rng.choice(len(ys), int(same.sum()))
        canvas = _backgrounds(rng, test_size, size, photos, (zoom_min, zoom_max))
        half = size // 2
        centre_top = (size - item_size) // 2
        masks = np.zeros((test_size, 2, size, size), dtype=bool)
        left_first = rng.integers(0, 2, test_size).astype(bool)
        for k, idx in enumerate((first, second)):
            item, alpha = _items(rng, torch.from_numpy(fm["test_x"][idx]).float().div(255.0).unsqueeze(1), item_size)
            in_left = left_first if k == 0 else ~left_first
            lefts = np.where(in_left, (half - item_size) // 2, half + (half - item_size) // 2)
            lefts = np.clip(lefts + rng.integers(-jitter, jitter + 1, test_size), 0, size - item_size)
            tops = np.clip(centre_top + rng.integers(-jitter, jitter + 1, test_size), 0, size - item_size)
            masks[:, k] = _paste(canvas, item, alpha, tops, lefts).numpy()
        out["test_x"], out["test_y"] = _to_uint8(canvas), ys[first].astype(np.int64)
        out["test_classes"] = np.stack([ys[first], ys[second]], 1).astype(np.int64)
        out["test_masks"] = masks
        return out

    files = _fashion_files_for(root, system_dir) + background_files()
    a = _cached(name, settings, files, cache_dir, build)
    tx, ty, vx, vy = split_train_val(_from_uint8(a["train_x"]), torch.from_numpy(a["train_y"]), val_size, seed)
    data = ImageData(name, f"STAND-IN for COCO two-object images: FashionMNIST items on skimage photographs "
                           f"(recipe {RECIPE})", tx, ty, vx, vy, _from_uint8(a["test_x"]),
                     torch.from_numpy(a["test_y"]), num_classes=10, default_epochs=train_epochs)
    data.extras["test_masks"] = torch.from_numpy(a["test_masks"])
    data.extras["test_classes"] = torch.from_numpy(a["test_classes"])
    data.extras["test_class_sets"] = F.one_hot(data.extras["test_classes"], 10).bool()
    return data


def _fashion_files_for(root=None, system_dir=str(DEBIAN_FASHION_MNIST)) -> list[Path]:
    directory = _fashion_dir(root, system_dir)
    return [_find(directory, stem) for stem in _FILES.values()]


def _composite_files(root: str | None = None, system_dir: str | None = str(DEBIAN_FASHION_MNIST)) -> list[Path]:
    return _fashion_files_for(root, system_dir) + background_files()


load_cfm32.locate = _composite_files
load_two_objects.locate = _composite_files
