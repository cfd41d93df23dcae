"""The real CIFAR-10 loader (robex/data/cifar10.py) on a generated miniature in torchvision's
on-disk format: pixels land where the format puts them, splits are seeded, and a missing or damaged
folder is one line that names it."""
import pickle
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from robex.data.cifar10 import load_cifar10
from robex.errors import RobexError

from tests.conftest import make_cifar_miniature

ROOT = Path(__file__).resolve().parents[1]


def test_pixels_and_labels_come_from_the_batches(tmp_path):
    root = make_cifar_miniature(tmp_path)
    data = load_cifar10(root=str(root), val_size=20)
    with open(root / "cifar-10-batches-py" / "test_batch", "rb") as f:
        test = pickle.load(f, encoding="bytes")
    # the format: 1024 red values row by row, then green, then blue
    row = test[b"data"][3]
    assert data.test_x[3, 1, 2, 5].item() == pytest.approx(row[1024 + 2 * 32 + 5] / 255.0)
    assert data.test_y.tolist() == test[b"labels"]
    assert (len(data.train_y), len(data.val_y), len(data.test_y)) == (180, 20, 40)
    again = load_cifar10(root=str(root), val_size=20)
    assert (again.val_x == data.val_x).all()  # the seeded split


def test_missing_or_damaged_cifar_is_one_line_naming_the_folder(tmp_path):
    with pytest.raises(RobexError, match=r"dataset.root=.*nothing does not exist.*cifar-10-batches-py"):
        load_cifar10(root=str(tmp_path / "nothing"))
    with pytest.raises(RobexError, match="stand-in dataset=cfm32"):
        load_cifar10(root=None)
    root = make_cifar_miniature(tmp_path / "broken")
    (root / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(RobexError, match="data_batch_3 cannot be read"):
        load_cifar10(root=str(root), val_size=20)
    (root / "cifar-10-batches-py" / "test_batch").unlink()
    with pytest.raises(RobexError, match="lacks test_batch"):
        load_cifar10(root=str(root), val_size=20)


def test_a_cifar_job_runs_end_to_end_on_the_miniature(tmp_path):
    root = make_cifar_miniature(tmp_path / "data", per_batch=120)
    r = subprocess.run([sys.executable, "run.py", "dataset=cifar10", f"dataset.root={root}", "model=vgg_small",
                        "model.in_channels=3", "model.image_size=32", "debug=tiny",
                        f"hydra.run.dir={tmp_path}/run", f"paths.cache_dir={tmp_path}/cache"],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = pd.read_csv(tmp_path / "run" / "metrics.csv")
    assert set(rows["dataset"]) == {"cifar10"} and rows["source"].str.endswith("cifar-10-batches-py").all()
    bad = subprocess.run([sys.executable, "run.py", "dataset=cifar10", f"dataset.root={tmp_path}/absent",
                          f"hydra.run.dir={tmp_path}/run2"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert bad.returncode == 2 and bad.stderr.startswith("robex error: CIFAR-10 not found")
