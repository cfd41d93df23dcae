"""The cache knows what data it was computed on: other files under the same or another root give
another key (and so fresh numbers), the same files under another path give the same key, and a
root the user gave that holds no data is an error that names it (no silent fallback)."""
import shutil
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from robex.cache import Cache
from robex.data.idx import read_idx, write_idx
from robex.data.mnist_like import load_fashion_mnist
from robex.errors import RobexError
from robex.pipeline import job_spec

CONF = Path(__file__).resolve().parents[1] / "conf"


def _cfg(root):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="config", overrides=[f"dataset.root={root}", "dataset.system_dir=null"])


def _key(root):
    return Cache("unused", enabled=False).key(job_spec(_cfg(root)))


def test_the_job_key_follows_the_files_not_the_path(tmp_path, fashion_standin):
    copy = tmp_path / "copy"
    shutil.copytree(fashion_standin, copy)
    assert _key(copy) == _key(fashion_standin)  # same bytes elsewhere: the same numbers apply
    inverted = tmp_path / "inverted"
    shutil.copytree(fashion_standin, inverted)
    path = next(inverted.glob("t10k-images*"))
    images = read_idx(path)
    path.unlink()
    write_idx(inverted / "t10k-images-idx3-ubyte.gz", 255 - images)
    assert _key(inverted) != _key(fashion_standin)


def test_a_root_that_does_not_exist_or_holds_no_data_is_named(tmp_path):
    with pytest.raises(RobexError, match=f"dataset.root={tmp_path / 'nowhere'} does not exist"):
        load_fashion_mnist(root=str(tmp_path / "nowhere"))
    with pytest.raises(RobexError, match="holds no FashionMNIST IDX files"):
        load_fashion_mnist(root=str(tmp_path))
    with pytest.raises(RobexError, match="does not exist"):  # before any work: the key needs the files
        _key(tmp_path / "nowhere")
