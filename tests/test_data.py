import numpy as np
import pytest
import torch

from robex.data.idx import read_idx, write_idx
from robex.data.mnist_like import load_fashion_mnist, load_mnist, load_mnist5k
from robex.errors import RobexError


def test_idx_round_trip_gz_and_raw(tmp_path):
    a = np.random.default_rng(0).integers(0, 256, (5, 4, 3), dtype=np.uint8)
    for name in ("a.gz", "a"):
        write_idx(tmp_path / name, a)
        np.testing.assert_array_equal(read_idx(tmp_path / name), a)


def test_truncated_idx_is_rejected(tmp_path):
    write_idx(tmp_path / "t", np.zeros((10, 2), np.uint8))
    data = (tmp_path / "t").read_bytes()
    (tmp_path / "t").write_bytes(data[:-3])
    with pytest.raises(RobexError, match="truncated"):
        read_idx(tmp_path / "t")


def test_full_mnist_reader_on_generated_idx_files(tmp_path):
    from tests.conftest import make_fashion_standin

    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    make_fashion_standin(raw, n_train=300, n_test=50)
    d = load_mnist(root=str(tmp_path), val_size=100, download=False)
    assert d.name == "mnist" and d.source == str(raw)
    assert d.train_x.shape == (200, 1, 28, 28) and d.val_x.shape == (100, 1, 28, 28)
    assert d.test_x.shape == (50, 1, 28, 28)
    assert 0.0 <= d.train_x.min() and d.train_x.max() <= 1.0
    again = load_mnist(root=str(tmp_path), val_size=100, download=False)
    assert torch.equal(d.val_y, again.val_y)  # seeded split


def test_mnist_missing_without_download_is_a_clear_error(tmp_path):
    with pytest.raises(RobexError, match="not found"):
        load_mnist(root=str(tmp_path), download=False)


def test_fashion_mnist_reads_a_user_root(fashion_standin):
    d = load_fashion_mnist(root=str(fashion_standin), val_size=500, system_dir=None)
    assert d.source == str(fashion_standin)
    assert len(d.train_y) + len(d.val_y) == 3000 and len(d.test_y) == 600


def test_mnist5k_split_is_stratified_deterministic_and_labelled_a_subset():
    a, b = load_mnist5k(), load_mnist5k()
    c = load_mnist5k(split_seed=1)
    assert "subset" in a.source
    assert torch.equal(a.test_y, b.test_y) and torch.equal(a.train_x, b.train_x)
    assert not torch.equal(a.test_x, c.test_x)
    for part, n in ((a.test_y, 100), (a.val_y, 50), (a.train_y, 350)):
        assert torch.bincount(part, minlength=10).tolist() == [n] * 10
    assert len(a.train_y) + len(a.val_y) + len(a.test_y) == 5000
