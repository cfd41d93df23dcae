"""Cascading parameter randomisation (robex/tasks/cascade.py): the cascade changes exactly the units
above the current step, step 0 is the original, maps of a trained net lose their rank correlation,
and a layer the model lacks is one clear line."""
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from torch import nn

from robex.errors import RobexError
from robex.tasks.cascade import check_units, default_units, randomise

ROOT = Path(__file__).resolve().parents[1]


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 6 * 6, 8), nn.ReLU(), nn.Linear(8, 3))


def test_the_cascade_changes_the_units_above_and_leaves_those_below():
    net = _net()
    units = default_units(net)
    assert units == ["6", "4", "0"]
    before = {k: v.clone() for k, v in net.state_dict().items()}
    randomise(net.get_submodule("6"), seed=1)
    randomise(net.get_submodule("4"), seed=2)
    after = net.state_dict()
    for key in before:
        changed = not torch.equal(before[key], after[key])
        top = key.startswith(("6.", "4."))
        assert changed == top or (not top and not changed), key  # below: untouched
    again = _net()
    randomise(again.get_submodule("6"), seed=1)
    assert torch.equal(again[6].weight, after["6.weight"])  # seeded
    bn = _net()
    bn[1].running_mean.fill_(3.0)
    randomise(bn.get_submodule("1"), seed=0)
    assert torch.equal(bn[1].running_mean, torch.zeros(4))  # statistics re-initialised too


def test_a_layer_the_model_lacks_is_one_line_listing_the_names():
    with pytest.raises(RobexError, match=r"names \['layer9'\], which the model does not have; its modules: 0, 1"):
        check_units(_net(), ["6", "layer9"])
    with pytest.raises(RobexError, match="twice"):
        check_units(_net(), ["6", "6"])


def test_a_cascade_job_writes_one_curve_per_map_kind_starting_at_one(tmp_path, fashion_standin):
    env = dict(os.environ, ROBEX_FASHION_MNIST_ROOT=str(fashion_standin))
    r = subprocess.run([sys.executable, "run.py", "task=cascade", "explainer=gradient", "debug=tiny",
                        f"hydra.run.dir={tmp_path}/run", f"paths.cache_dir={tmp_path}/cache"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = pd.read_csv(tmp_path / "run" / "metrics.csv")
    abs_rows = rows[rows.metric == "spearman_abs"].sort_values("step")
    assert abs_rows["step"].tolist() == [0, 1, 2, 3, 4]  # atex_cnn: 2 conv + 2 linear units
    assert abs_rows["value"].iloc[0] == pytest.approx(1.0)
    assert abs_rows["value"].iloc[-1] < 0.9  # everything randomised: the map has changed
    assert abs_rows["metric_params"].tolist()[:2] == ["layer=original", "layer=9"]  # the logits first
    assert set(rows["step_axis"]) == {"cascade"}
    bad = subprocess.run([sys.executable, "run.py", "task=cascade", "task.layers=[fc9]", "debug=tiny",
                          f"hydra.run.dir={tmp_path}/run2", f"paths.cache_dir={tmp_path}/cache"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert bad.returncode == 2 and bad.stderr.startswith("robex error: task.layers names ['fc9']")
