"""The real COCO two-object loader (robex/data/coco.py) on a generated miniature COCO folder (COCO's
own annotation format, read by pycocotools): which images pass the filter, masks where the
segmentation says, each object's ImageNet class set, and one-line errors."""

import pytest
import torch

from robex.data.coco import imagenet_indices, load_coco_two_objects
from robex.errors import RobexError

from tests.conftest import make_coco_miniature

MAPPING = {"dog": ["151-268"], "cat": ["tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"],
           "zebra": ["zebra"]}


def test_only_two_object_images_of_mapped_different_categories_are_kept(tmp_path):
    root = make_coco_miniature(tmp_path)
    data = load_coco_two_objects(root=str(root), mapping=MAPPING, n_images=10)
    assert data.extras["test_categories"] == [["dog", "cat"], ["zebra", "cat"]]  # images 1 and 5
    assert data.test_x.shape == (2, 3, 224, 224) and (data.test_y == -1).all()
    sets = data.extras["test_class_sets"]
    assert sets.shape == (2, 2, 1000)
    assert sets[0, 0].sum() == 118 and bool(sets[0, 0, 151]) and bool(sets[0, 0, 268])  # the dog breeds
    assert sets[0, 1].nonzero().flatten().tolist() == imagenet_indices(MAPPING["cat"]) == [281, 282, 283, 284, 285]
    assert "2 two-object images" in data.source


def test_masks_follow_the_segmentation_through_resize_and_crop(tmp_path):
    root = make_coco_miniature(tmp_path)
    masks = load_coco_two_objects(root=str(root), mapping=MAPPING, n_images=10).extras["test_masks"]
    assert masks.shape == (2, 2, 224, 224) and masks.dtype == torch.bool
    dog = masks[0, 0]  # the rectangle x 50..100, y 60..120 of a 256 image, centre-cropped by 16 px
    assert bool(dog[60 - 16 + 1:120 - 16 - 1, 50 - 16 + 1:100 - 16 - 1].all())
    assert int(dog.sum()) == pytest.approx(50 * 60, rel=0.06)
    assert not bool(dog[:, 100 - 16 + 2:].any()) and not bool(dog[:60 - 16 - 1].any())
    assert not bool((masks[0, 0] & masks[0, 1]).any())


def test_min_area_and_the_seeded_draw(tmp_path):
    root = make_coco_miniature(tmp_path)
    cats = load_coco_two_objects(root=str(root), mapping=MAPPING, n_images=10, min_area=0.0).extras["test_categories"]
    assert cats == [["dog", "cat"], ["zebra", "cat"], ["dog", "cat"]]  # the tiny cat of image 6 now counts
    one = load_coco_two_objects(root=str(root), mapping=MAPPING, n_images=1, min_area=0.0, seed=3)
    again = load_coco_two_objects(root=str(root), mapping=MAPPING, n_images=1, min_area=0.0, seed=3)
    assert (one.test_x == again.test_x).all()


def test_missing_or_wrong_coco_is_one_line(tmp_path):
    with pytest.raises(RobexError, match="stand-in dataset=two_objects"):
        load_coco_two_objects(root=None, mapping=MAPPING)
    with pytest.raises(RobexError, match=r"instances_val2017.json does not exist"):
        load_coco_two_objects(root=str(tmp_path / "nothing"), mapping=MAPPING)
    root = make_coco_miniature(tmp_path / "coco")
    with pytest.raises(RobexError, match="'tabbby', which is not an ImageNet class name"):
        load_coco_two_objects(root=str(root), mapping={"cat": ["tabbby"], "dog": ["151-268"]})
    with pytest.raises(RobexError, match=r"categories the annotations do not know: \['kangaroo'\]"):
        load_coco_two_objects(root=str(root), mapping={**MAPPING, "kangaroo": ["wallaby"]})
    (root / "val2017" / "000000000001.jpg").unlink()
    with pytest.raises(RobexError, match="000000000001.jpg is missing"):
        load_coco_two_objects(root=str(root), mapping=MAPPING)
    (root / "annotations" / "instances_val2017.json").write_text("{broken")
    with pytest.raises(RobexError, match="cannot be read as COCO instances annotations"):
        load_coco_two_objects(root=str(root), mapping=MAPPING)
