"""The offline stand-ins built from FashionMNIST items on scikit-image photographs
(robex/data/composites.py): deterministic, cached exactly, labelled by the item, masks exact, and
named as stand-ins; bad settings and missing backgrounds are one clear error."""
import numpy as np
import pytest
import torch

from robex.data import composites
from robex.data.composites import _paste, load_cfm32, load_two_objects
from robex.errors import RobexError

SMALL = dict(train_size=120, val_size=20, test_size=30)


def test_cfm32_is_deterministic_cached_exactly_and_named_a_stand_in(tmp_path, fashion_standin):
    a = load_cfm32(root=str(fashion_standin), cache_dir=str(tmp_path / "c1"), **SMALL)
    b = load_cfm32(root=str(fashion_standin), cache_dir=None, **SMALL)  # built again, no cache
    c = load_cfm32(root=str(fashion_standin), cache_dir=str(tmp_path / "c1"), **SMALL)  # read back
    assert len(list((tmp_path / "c1" / "data").glob("cfm32-*.npz"))) == 1
    for x in (b, c):
        assert torch.equal(a.train_x, x.train_x) and torch.equal(a.test_y, x.test_y)
    assert a.image_shape == (3, 32, 32) and a.train_x.min() >= 0 and a.train_x.max() <= 1
    assert (len(a.train_y), len(a.val_y), len(a.test_y)) == (120, 20, 30)
    assert "STAND-IN" in a.source and "CIFAR-10" in a.source
    # another seed is another data set; a colour image, not three equal channels
    d = load_cfm32(root=str(fashion_standin), cache_dir=None, seed=1, **SMALL)
    assert not torch.equal(a.test_x, d.test_x)
    assert (a.test_x[:, 0] - a.test_x[:, 1]).abs().mean() > 0.02


def test_cfm32_images_carry_their_fashion_mnist_item_and_its_label(fashion_standin):
    from robex.data.mnist_like import load_fashion_mnist

    fm = load_fashion_mnist(root=str(fashion_standin), val_size=100)
    data = load_cfm32(root=str(fashion_standin), cache_dir=None, **SMALL)
    src = data.extras["test_source_index"]
    assert torch.equal(data.test_y, fm.test_y[src])
    # the item sits at the centre up to a 2-pixel jitter: at the best offset, the image's brightness
    # correlates with its own item better than with an item of another class
    gray = data.test_x.mean(1)
    crops = [gray[:, 2 + dy:30 + dy, 2 + dx:30 + dx].flatten(1) for dy in range(-2, 3) for dx in range(-2, 3)]
    labels = fm.test_y
    other_index = torch.tensor([int(torch.nonzero(labels != labels[i])[0]) for i in src])
    own, other = fm.test_x[src].flatten(1), fm.test_x[other_index].flatten(1)
    corr = lambda a, b: torch.nn.functional.cosine_similarity(a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True))  # noqa: E731
    best = lambda items: torch.stack([corr(c, items).abs() for c in crops]).amax(0)  # noqa: E731
    assert (best(own) > best(other)).float().mean() > 0.8 and best(own).mean() - best(other).mean() > 0.25


def test_pasting_blends_by_alpha_and_the_mask_is_the_items_own_pixels():
    canvas = torch.full((1, 3, 8, 8), 0.5)
    item = torch.ones(1, 3, 3, 3)
    alpha = torch.tensor([[0.0, 0.2, 1.0], [0.3, 0.9, 0.0], [0.0, 0.0, 0.5]]).view(1, 1, 3, 3)
    masks = _paste(canvas, item, alpha, [2], [4])
    expected = torch.zeros(8, 8, dtype=torch.bool)
    expected[2:5, 4:7] = alpha[0, 0] > 0.25
    assert torch.equal(masks[0], expected)
    torch.testing.assert_close(canvas[0, :, 2:5, 4:7], (alpha[0] * 1.0 + (1 - alpha[0]) * 0.5).expand(3, 3, 3))
    assert bool((canvas[0, :, :2] == 0.5).all())  # nothing outside the item's square changed


def test_two_objects_test_canvases_hold_two_classes_with_disjoint_masks(tmp_path, fashion_standin):
    data = load_two_objects(root=str(fashion_standin), cache_dir=str(tmp_path), **SMALL)
    masks, classes = data.extras["test_masks"], data.extras["test_classes"]
    sets = data.extras["test_class_sets"]
    assert sets.shape == (30, 2, 10) and bool((sets.sum(2) == 1).all()) and bool(sets[0, 1, classes[0, 1]])
    assert masks.shape == (30, 2, 64, 64) and classes.shape == (30, 2)
    assert bool((classes[:, 0] != classes[:, 1]).all()) and torch.equal(data.test_y, classes[:, 0])
    assert bool((masks.flatten(2).sum(2) > 20).all())  # every object has its pixels
    assert not bool((masks[:, 0] & masks[:, 1]).any())  # one per half: never overlapping
    left = masks[..., :32].flatten(2).sum(2) > masks[..., 32:].flatten(2).sum(2)
    assert bool((left[:, 0] != left[:, 1]).all())  # one object in each half
    assert data.train_x.shape[1:] == (3, 64, 64) and "STAND-IN" in data.source and "COCO" in data.source
    again = load_two_objects(root=str(fashion_standin), cache_dir=str(tmp_path), **SMALL)
    assert torch.equal(again.extras["test_masks"], masks) and torch.equal(again.test_x, data.test_x)


def test_bad_settings_and_missing_backgrounds_are_one_clear_error(tmp_path, fashion_standin, monkeypatch):
    with pytest.raises(RobexError, match="train_size=0"):
        load_cfm32(root=str(fashion_standin), cache_dir=None, train_size=0)
    with pytest.raises(RobexError, match="cannot hold two"):
        load_two_objects(root=str(fashion_standin), cache_dir=None, size=40, **SMALL)
    with pytest.raises(RobexError, match="FashionMNIST has"):
        load_cfm32(root=str(fashion_standin), cache_dir=None, train_size=10 ** 6)
    monkeypatch.setattr(composites, "BACKGROUNDS", ("no_such_photo.png",))
    with pytest.raises(RobexError, match="no_such_photo.png is missing"):
        load_cfm32(root=str(fashion_standin), cache_dir=None, **SMALL)


def test_the_cache_key_follows_the_recipe_settings(tmp_path, fashion_standin):
    load_cfm32(root=str(fashion_standin), cache_dir=str(tmp_path), **SMALL)
    load_cfm32(root=str(fashion_standin), cache_dir=str(tmp_path), jitter=1, **SMALL)
    assert len(list((tmp_path / "data").glob("cfm32-*.npz"))) == 2
    assert np.load(next((tmp_path / "data").glob("cfm32-*.npz")))["train_x"].dtype == np.uint8
