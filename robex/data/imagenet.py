"""ImageNet validation images from a user-given folder (nothing is downloadable offline).

Layout: ``root/<wnid>/<image>`` (the class-folder layout of the validation set; class indices are
the sorted wnids, torchvision's convention, so all 1,000 folders must be present for real labels).
Preprocessing: resize 256, centre crop 224, [0,1] tensors (normalisation is inside the model).
"""
from __future__ import annotations

from pathlib import Path

import torch

from robex.data.base import ImageData
from robex.errors import RobexError

_EXTS = {".jpeg", ".jpg", ".png"}


def load_imagenet_val(name: str = "imagenet", root: str | None = None, n_images: int = 200, seed: int = 0,
                      resize: int = 256, crop: int = 224) -> ImageData:
    if not root or not Path(root).is_dir():
        raise RobexError(f"ImageNet validation images not found at dataset.root={root}: put the validation "
                         f"set in class folders (<root>/<wnid>/*.JPEG) and pass dataset.root=<root>")
    from PIL import Image
    from torchvision import transforms

    classes = sorted(d.name for d in Path(root).iterdir() if d.is_dir())
    files = [(f, c) for c, wnid in enumerate(classes) for f in sorted((Path(root) / wnid).iterdir())
             if f.suffix.lower() in _EXTS]
    if not files:
        raise RobexError(f"no images under {root}/<class folder>/")
    gen = torch.Generator().manual_seed(seed)
    pick = torch.randperm(len(files), generator=gen)[:n_images].sort().values.tolist()
    tf = transforms.Compose([transforms.Resize(resize), transforms.CenterCrop(crop), transforms.ToTensor()])
    xs = torch.stack([tf(Image.open(files[i][0]).convert("RGB")) for i in pick])
    ys = torch.tensor([files[i][1] for i in pick])
    empty_x, empty_y = xs[:0], ys[:0]
    return ImageData(name, f"{root} ({len(classes)} classes, {len(pick)} images)", empty_x, empty_y,
                     empty_x, empty_y, xs, ys, num_classes=max(1000, len(classes)), default_epochs=0)


def _root_folder(root: str | None = None) -> list[Path]:
    """The whole folder (fingerprinted by its files' relative paths and sizes)."""
    return [Path(root)] if root else []


load_imagenet_val.locate = _root_folder
