"""Shared fixtures: a small trained softplus CNN on the 8x8 digits, and a generated FashionMNIST
stand-in (IDX files) for end-to-end runs."""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from robex.data.idx import write_idx
from robex.data.mnist_like import load_digits
from robex.models.atex_cnn import atex_cnn
from robex.pipeline import freeze
from robex.trainers.fit import fit
from robex.trainers.losses import CrossEntropy
from robex.trainers.optim import OptimiserSpec

torch.set_num_threads(1)  # tiny models: one thread is as fast and robust to a busy machine


def _train(model, digits):
    fit(model, CrossEntropy(), digits.train_x, digits.train_y, epochs=15, batch_size=32,
        optimiser=OptimiserSpec(lr=3e-3), generator=torch.Generator().manual_seed(0),
        validation=(digits.val_x, digits.val_y), show_progress=False)


@pytest.fixture(scope="session")
def digits():
    return load_digits()


@pytest.fixture(scope="session")
def digits_model(digits):
    """atex_cnn on 8x8 digits (softplus beta 10), trained for a few epochs: ~95% accuracy."""
    torch.manual_seed(0)
    model = atex_cnn(image_size=8, channels=8, hidden=32, beta=10.0)
    _train(model, digits)
    return freeze(model)


@pytest.fixture(scope="session")
def relu_digits_model(digits):
    """vgg_small (ReLU) on 8x8 digits, trained for a few epochs: AGG-Mean's kind of network."""
    from robex.models.vgg import vgg_small

    torch.manual_seed(0)
    model = vgg_small(image_size=8, widths=(8, 8), hidden=32)
    _train(model, digits)
    return freeze(model)


def make_fashion_standin(root, n_train=3000, n_test=600, seed=0):
    """Four gzipped IDX files shaped like FashionMNIST: 28x28 uint8 images whose class is a
    bright bar at a class-specific position, plus noise."""
    rng = np.random.default_rng(seed)

    def images(n):
        y = rng.integers(0, 10, n)
        x = rng.integers(0, 60, (n, 28, 28))
        for i, c in enumerate(y):
            r = 2 + 2 * c
            x[i, r:r + 3, 4:24] += 180
        return np.clip(x, 0, 255).astype(np.uint8), y.astype(np.uint8)

    xtr, ytr = images(n_train)
    xte, yte = images(n_test)
    write_idx(root / "train-images-idx3-ubyte.gz", xtr)
    write_idx(root / "train-labels-idx1-ubyte.gz", ytr)
    write_idx(root / "t10k-images-idx3-ubyte.gz", xte)
    write_idx(root / "t10k-labels-idx1-ubyte.gz", yte)
    return root


@pytest.fixture(scope="session")
def fashion_standin(tmp_path_factory):
    return make_fashion_standin(tmp_path_factory.mktemp("fmnist"))


def make_image_folder(root, classes=("n01440764", "n01443537", "n01484850"), per_class=2, size=(300, 260)):
    """ImageNet-style class folders of random JPEGs (a stand-in for the validation set)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 255, (*size[::-1], 3), dtype=np.uint8)).save(root / c / f"img{i}.JPEG")
    return root


def make_annotation_benchmark(root, n=3, size=(240, 240)):
    """images/ + masks/ with matching stems (a stand-in for Mohseni & Ragan's benchmark)."""
    from PIL import Image

    rng = np.random.default_rng(1)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(root / "images" / f"a{i}.jpg")
        mask = np.zeros(size, np.uint8)
        mask[60:180, 60:180] = 255
        Image.fromarray(mask).save(root / "masks" / f"a{i}.png")
    return root


@pytest.fixture(scope="session")
def imagenet_standin(tmp_path_factory):
    return make_image_folder(tmp_path_factory.mktemp("imagenet"))


@pytest.fixture(scope="session")
def annotation_standin(tmp_path_factory):
    return make_annotation_benchmark(tmp_path_factory.mktemp("annotations"))


def make_cifar_miniature(root: Path, per_batch: int = 40, seed: int = 0) -> Path:
    """cifar-10-batches-py/ with five training batches and a test batch of random images."""
    rng = np.random.default_rng(seed)
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
                 b"labels": rng.integers(0, 10, per_batch).tolist(), b"batch_label": name.encode()}
        with open(d / name, "wb") as f:
            pickle.dump(batch, f)
    return root


def _rect(x0, y0, x1, y1):
    return [[x0, y0, x1, y0, x1, y1, x0, y1]]


def make_coco_miniature(root: Path) -> Path:
    """val2017/ with 256x256 JPEGs and annotations/instances_val2017.json. Image 1: dog + cat
    (kept); 2: dog + cat + zebra (three objects); 3: two dogs (same category); 4: dog + 'person'
    (unmapped); 5: zebra + cat, plus a crowd region (kept: crowds are ignored); 6: dog + a tiny cat."""
    (root / "annotations").mkdir(parents=True)
    (root / "val2017").mkdir()
    cats = [{"id": 18, "name": "dog"}, {"id": 17, "name": "cat"}, {"id": 24, "name": "zebra"},
            {"id": 1, "name": "person"}]
    # every category robex's default mapping names, as the real file lists all 80
    from omegaconf import OmegaConf

    default = OmegaConf.load(Path(__file__).resolve().parents[1] / "conf" / "dataset" / "coco_two_objects.yaml")
    known = {c["name"] for c in cats}
    cats += [{"id": 100 + i, "name": n} for i, n in enumerate(default.mapping) if n not in known]
    objects = {1: [(18, (50, 60, 100, 120)), (17, (150, 40, 230, 200))],
               2: [(18, (10, 10, 60, 60)), (17, (100, 100, 150, 150)), (24, (170, 20, 240, 90))],
               3: [(18, (10, 10, 60, 60)), (18, (100, 100, 150, 150))],
               4: [(18, (10, 10, 60, 60)), (1, (100, 100, 150, 150))],
               5: [(24, (30, 30, 120, 200)), (17, (140, 60, 220, 180)), (1, (0, 0, 256, 20), True)],
               6: [(18, (30, 30, 120, 200)), (17, (140, 60, 145, 65))]}
    images, anns, rng = [], [], np.random.default_rng(0)
    for img_id, objs in objects.items():
        name = f"{img_id:012d}.jpg"
        Image.fromarray(rng.integers(0, 255, (256, 256, 3), dtype=np.uint8)).save(root / "val2017" / name)
        images.append({"id": img_id, "file_name": name, "width": 256, "height": 256})
        for k, obj in enumerate(objs):
            cat, (x0, y0, x1, y1) = obj[0], obj[1]
            crowd = len(obj) > 2
            anns.append({"id": img_id * 10 + k, "image_id": img_id, "category_id": cat, "iscrowd": int(crowd),
                         "segmentation": _rect(x0, y0, x1, y1), "area": float((x1 - x0) * (y1 - y0)),
                         "bbox": [x0, y0, x1 - x0, y1 - y0]})
    (root / "annotations" / "instances_val2017.json").write_text(
        json.dumps({"images": images, "annotations": anns, "categories": cats}))
    return root


@pytest.fixture(scope="session")
def cifar_standin(tmp_path_factory):
    return make_cifar_miniature(tmp_path_factory.mktemp("cifar"))


@pytest.fixture(scope="session")
def coco_standin(tmp_path_factory):
    return make_coco_miniature(tmp_path_factory.mktemp("coco"))
