"""The class-sensitivity (pointing) task (robex/tasks/class_sensitivity.py): the paper's filter on
the model's ranking, and a job on the two_objects stand-in."""
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import torch

from robex.tasks.class_sensitivity import pointing_filter

ROOT = Path(__file__).resolve().parents[1]


def _sets(pairs, c=6):
    s = torch.zeros(len(pairs), 2, c, dtype=torch.bool)
    for i, (a, b) in enumerate(pairs):
        for k, classes in enumerate((a, b)):
            s[i, k, list(classes)] = True
    return s


def test_the_filter_keeps_top1_on_one_object_and_the_other_within_the_top_classes():
    logits = torch.tensor([[9., 5., 4., 1., 0., 0.],   # top-1 0 (object 2), object 1's class 2 ranks 3rd
                           [9., 5., 4., 1., 0., 0.],   # object 1's class 5 ranks last: out of the top 3
                           [9., 5., 4., 1., 0., 0.],   # top-1 class on neither object
                           [1., 9., 8., 0., 0., 0.]])  # both objects share the top-1 class: dropped
    sets = _sets([({2, 3}, {0}), ({5}, {0}), ({4}, {3}), ({1, 2}, {1})])
    keep, first, c1, c2 = pointing_filter(logits, sets, top_classes=3)
    assert keep.tolist() == [True, False, False, False]
    assert first[0].item() == 1 and c1[0].item() == 0 and c2[0].item() == 2  # highest-ranked of {2, 3}


def test_a_pointing_job_on_the_two_objects_stand_in(tmp_path, fashion_standin):
    env = dict(os.environ, ROBEX_FASHION_MNIST_ROOT=str(fashion_standin), OMP_NUM_THREADS="1")
    args = [sys.executable, "run.py", "dataset=two_objects", "model=resnet_small", "model.image_size=64",
            "task=class_sensitivity", "task.top_classes=10", "task.n_gallery=2", "explainer=gradient", "debug=tiny",
            "dataset.train_size=200", "train.limit=200", f"hydra.run.dir={tmp_path}/run",
            f"paths.cache_dir={tmp_path}/cache"]
    r = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = pd.read_csv(tmp_path / "run" / "metrics.csv").set_index("metric")
    assert rows.loc["images_seen", "value"] == 50
    kept = rows.loc["images_kept", "value"]
    assert 0 < kept <= 50  # top_classes = all 10: every image whose top-1 is one of its objects
    for m in ("top_k_in_mask_obj1", "top_k_in_mask_obj2"):
        assert 0.0 <= rows.loc[m, "value"] <= 1.0 and rows.loc[m, "metric_params"] == "k=20"
        assert rows.loc[m, "n"] == min(kept, 16)  # debug=tiny: n_eval 16
    bad = subprocess.run([sys.executable, "run.py", "task=class_sensitivity", "debug=tiny",
                          f"hydra.run.dir={tmp_path}/run2", f"paths.cache_dir={tmp_path}/cache"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert bad.returncode == 2 and "needs a data set with two object masks" in bad.stderr.splitlines()[0]
