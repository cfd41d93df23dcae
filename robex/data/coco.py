"""MS COCO images holding exactly two objects whose categories are ImageNet classes: the data of the
smoothed-explanations paper's class-sensitivity test (Table 1, Fig. 3).

Layout (COCO's own): ``<root>/annotations/instances_<split>.json`` and ``<root>/<split>/*.jpg``
(``split`` val2017 by default). Annotations are read with pycocotools (the COCO team's reader);
each object's mask is its segmentation (polygons or RLE) rasterised by pycocotools.

Kept: images whose non-crowd annotations are exactly two objects of two different categories, both
in ``mapping`` (COCO category name -> ImageNet class names, or index ranges such as ``151-268`` for
the dog breeds; the ImageNet names are torchvision's category list, so the mapping is checked when
the loader runs), each object covering at least ``min_area`` of the image. A seeded draw of
``n_images`` of them. Images and masks get resize 256 / centre crop 224 (masks nearest-neighbour).
Labels are unknown (-1); ``extras``: ``test_masks`` (N, 2, H, W) bool, ``test_class_sets``
(N, 2, 1000) bool (the ImageNet classes of each object), ``test_categories`` (the COCO names).
The pointing test itself (which object is the top-1 class, which within the top 20) needs the
model, so it is the task's filter, not the loader's.
"""
from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import torch

from robex.data.base import ImageData
from robex.errors import RobexError


def imagenet_categories() -> list[str]:
    """torchvision's 1,000 ImageNet class names (shipped with torchvision; no download)."""
    from torchvision.models import VGG16_Weights

    return list(VGG16_Weights.IMAGENET1K_V1.meta["categories"])


def imagenet_indices(entries) -> list[int]:
    """ImageNet class indices of a mapping entry: names of torchvision's list, or ``a-b`` ranges."""
    names = imagenet_categories()
    out = []
    for e in entries:
        e = str(e)
        if "-" in e and all(p.strip().isdigit() for p in e.split("-", 1)):
            lo, hi = (int(p) for p in e.split("-", 1))
            if not 0 <= lo <= hi < len(names):
                raise RobexError(f"dataset.mapping range {e!r} lies outside 0-{len(names) - 1}")
            out += list(range(lo, hi + 1))
        elif e in names:
            out.append(names.index(e))
        else:
            raise RobexError(f"dataset.mapping names {e!r}, which is not an ImageNet class name of torchvision's "
                             f"list (e.g. 'tabby', 'zebra', 'analog clock') nor a range such as '151-268'")
    return out


def _paths(root: str | None, split: str) -> tuple[Path, Path]:
    if not root:
        raise RobexError(f"dataset=coco_two_objects needs dataset.root=<COCO folder> holding "
                         f"annotations/instances_{split}.json and {split}/; offline, use the stand-in "
                         f"dataset=two_objects")
    ann, images = Path(root) / "annotations" / f"instances_{split}.json", Path(root) / split
    if not ann.is_file():
        raise RobexError(f"COCO annotations not found: {ann} does not exist: put COCO's "
                         f"annotations/instances_{split}.json under dataset.root={root}")
    if not images.is_dir():
        raise RobexError(f"COCO images not found: {images} is not a folder: put COCO's {split}/*.jpg "
                         f"under dataset.root={root}")
    return ann, images


def _select(coco, mapping: dict, min_area: float) -> list[tuple[int, list]]:
    """(image id, its two annotations) for every image that passes the filter (module docstring)."""
    cats = {c["id"]: c["name"] for c in coco.loadCats(coco.getCatIds())}
    unknown = sorted(set(mapping) - set(cats.values()))
    if unknown:
        raise RobexError(f"dataset.mapping has COCO categories the annotations do not know: {unknown}")
    kept = []
    for img_id in sorted(coco.getImgIds()):
        info = coco.loadImgs(img_id)[0]
        anns = [a for a in coco.loadAnns(coco.getAnnIds(imgIds=img_id)) if not a.get("iscrowd", 0)]
        if len(anns) != 2:
            continue
        names = [cats[a["category_id"]] for a in anns]
        if names[0] == names[1] or not all(n in mapping for n in names):
            continue
        if min(a["area"] for a in anns) < min_area * info["width"] * info["height"]:
            continue
        kept.append((img_id, anns))
    return kept


def load_coco_two_objects(name: str = "coco_two_objects", root: str | None = None, split: str = "val2017",
                          n_images: int = 200, seed: int = 0, min_area: float = 0.02, resize: int = 256,
                          crop: int = 224, mapping: dict | None = None) -> ImageData:
    ann_file, image_dir = _paths(root, split)
    mapping = {str(k): list(v) for k, v in dict(mapping or {}).items()}
    if not mapping:
        raise RobexError("dataset.mapping is empty: name the COCO categories and their ImageNet classes")
    class_ids = {k: imagenet_indices(v) for k, v in mapping.items()}
    from PIL import Image
    from pycocotools.coco import COCO
    from torchvision import transforms

    try:
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
            coco = COCO(str(ann_file))
    except Exception as exc:
        raise RobexError(f"{ann_file} cannot be read as COCO instances annotations "
                         f"({type(exc).__name__}: {exc})") from None
    kept = _select(coco, mapping, min_area)
    if not kept:
        raise RobexError(f"no image in {ann_file} holds exactly two objects of two different mapped "
                         f"categories covering >= {min_area:g} of the image each")
    rng = np.random.default_rng(seed)
    pick = sorted(rng.choice(len(kept), min(n_images, len(kept)), replace=False).tolist())
    to_image = transforms.Compose([transforms.Resize(resize), transforms.CenterCrop(crop), transforms.ToTensor()])
    to_mask = transforms.Compose([transforms.Resize(resize, interpolation=transforms.InterpolationMode.NEAREST),
                                  transforms.CenterCrop(crop)])
    cats = {c["id"]: c["name"] for c in coco.loadCats(coco.getCatIds())}
    xs, masks, sets, names = [], [], [], []
    for i in pick:
        img_id, anns = kept[i]
        info = coco.loadImgs(img_id)[0]
        path = image_dir / info["file_name"]
        if not path.is_file():
            raise RobexError(f"COCO image {path} is missing (listed in {ann_file.name})")
        xs.append(to_image(Image.open(path).convert("RGB")))
        obj_masks, obj_sets = [], []
        for a in anns:
            m = Image.fromarray(coco.annToMask(a).astype(np.uint8) * 255)
            obj_masks.append(torch.from_numpy(np.array(to_mask(m)) > 127))
            s = torch.zeros(1000, dtype=torch.bool)
            s[class_ids[cats[a["category_id"]]]] = True
            obj_sets.append(s)
        masks.append(torch.stack(obj_masks))
        sets.append(torch.stack(obj_sets))
        names.append([cats[a["category_id"]] for a in anns])
    x = torch.stack(xs)
    y = torch.full((len(x),), -1, dtype=torch.long)
    data = ImageData(name, f"{root} ({split}: {len(kept)} two-object images, {len(x)} drawn)", x[:0], y[:0],
                     x[:0], y[:0], x, y, num_classes=1000, default_epochs=0)
    data.extras.update(test_masks=torch.stack(masks), test_class_sets=torch.stack(sets), test_categories=names)
    return data


def _coco_files(root: str | None = None, split: str = "val2017") -> list[Path]:
    ann, images = _paths(root, split)
    return [ann, images]


load_coco_two_objects.locate = _coco_files
