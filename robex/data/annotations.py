"""The human-annotation benchmark of Mohseni & Ragan (2018), read from a user-given folder.

Layout: ``root/images/<stem>.<jpg|png>`` and ``root/masks/<stem>.png`` (the annotators' relevance
map, grey levels 0..255; same stem). Images get resize 256 / centre crop 224 (masks the same, as
one channel in [0,1]). Labels are unknown (-1): explanations are taken for the predicted class.
"""
from __future__ import annotations

from pathlib import Path

import torch

from robex.data.base import ImageData
from robex.errors import RobexError

_EXTS = (".jpg", ".jpeg", ".png")


def load_annotation_benchmark(name: str = "mohseni_annotations", root: str | None = None, resize: int = 256,
                              crop: int = 224) -> ImageData:
    images = Path(root) / "images" if root else None
    masks = Path(root) / "masks" if root else None
    if images is None or not images.is_dir() or not masks.is_dir():
        raise RobexError(
            f"human-annotation benchmark (Mohseni & Ragan 2018) not found at dataset.root={root}: put its "
            f"images in <root>/images/ and the annotation masks (same file stems, .png) in <root>/masks/")
    from PIL import Image
    from torchvision import transforms

    pairs = []
    for f in sorted(images.iterdir()):
        if f.suffix.lower() in _EXTS and (masks / f"{f.stem}.png").is_file():
            pairs.append((f, masks / f"{f.stem}.png"))
    if not pairs:
        raise RobexError(f"no image with a matching mask under {root}/images and {root}/masks")
    tf = transforms.Compose([transforms.Resize(resize), transforms.CenterCrop(crop), transforms.ToTensor()])
    xs = torch.stack([tf(Image.open(i).convert("RGB")) for i, _ in pairs])
    ms = torch.stack([tf(Image.open(m).convert("L"))[0] for _, m in pairs])
    ys = torch.full((len(pairs),), -1, dtype=torch.long)
    empty_x, empty_y = xs[:0], ys[:0]
    return ImageData(name, f"{root} ({len(pairs)} annotated images)", empty_x, empty_y, empty_x, empty_y,
                     xs, ys, num_classes=1000, default_epochs=0, extras={"test_masks": ms})


def _root_folder(root: str | None = None) -> list[Path]:
    """The whole folder (fingerprinted by its files' relative paths and sizes)."""
    return [Path(root)] if root else []


load_annotation_benchmark.locate = _root_folder
