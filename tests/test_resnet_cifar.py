"""CIFAR-style ResNets (robex/models/resnet_cifar.py): ResNet-18's known size, torchvision's layer
names, normalisation inside the model, every ReLU swappable, and a stand-in job end to end."""
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from torch import nn

from robex.errors import RobexError
from robex.models.resnet_cifar import resnet_cifar
from robex.models.transforms import softplus_surrogate

ROOT = Path(__file__).resolve().parents[1]


def test_resnet18_has_the_cifar_resnet18_size_and_layer_names():
    net = resnet_cifar()
    assert sum(p.numel() for p in net.parameters()) == 11_173_962  # the CIFAR ResNet-18, 10 classes
    names = {n for n, _ in net.named_modules()}
    assert {"conv1", "layer1.0", "layer1.1", "layer4.0", "layer4.1", "fc"} <= names
    assert net(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    relus = [m for m in net.modules() if isinstance(m, nn.ReLU)]
    assert len(relus) == 17 and len({id(m) for m in relus}) == 17  # 1 + 2 per block, none shared


def test_normalisation_is_inside_and_every_relu_is_replaced_by_the_surrogate():
    torch.manual_seed(0)
    net = resnet_cifar(blocks=(1, 1), width=8).eval()
    x = torch.rand(3, 3, 32, 32)
    body = nn.Sequential(*list(net.children())[1:])
    mean, std = torch.tensor(net.normalize.mean), torch.tensor(net.normalize.std)
    torch.testing.assert_close(net(x), body((x - mean) / std))
    smooth, handle = softplus_surrogate(net, 1e4)
    assert handle.count == 5 and not any(isinstance(m, nn.ReLU) for m in smooth.modules())
    torch.testing.assert_close(smooth(x), net(x), atol=1e-3, rtol=1e-3)  # large beta: the ReLU net
    handle.set_beta(1.0)
    assert (smooth(x) - net(x)).abs().max() > 1e-2
    assert sum(isinstance(m, nn.ReLU) for m in net.modules()) == 5  # the model itself is untouched


def test_bad_resnet_settings_are_one_clear_error():
    with pytest.raises(RobexError, match="at least one stage"):
        resnet_cifar(blocks=())
    with pytest.raises(RobexError, match="too small"):
        resnet_cifar(blocks=(1, 1, 1, 1, 1, 1), image_size=16)
    with pytest.raises(RobexError, match="one per input channel"):
        resnet_cifar(in_channels=1)


def test_the_stand_in_resnet_runs_an_explanation_attack_job_on_cfm32(tmp_path, fashion_standin):
    import os

    env = dict(os.environ, ROBEX_FASHION_MNIST_ROOT=str(fashion_standin))
    r = subprocess.run([sys.executable, "run.py", "dataset=cfm32", "model=resnet_small", "attack=manip_untargeted", "debug=tiny",
                        "train.limit=200", "dataset.train_size=200", "accuracy_limit=100",
                        f"hydra.run.dir={tmp_path}/run", f"paths.cache_dir={tmp_path}/cache"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = pd.read_csv(tmp_path / "run" / "metrics.csv")
    assert set(rows["model"]) == {"resnet_small"} and rows["source"].str.contains("STAND-IN").all()
    assert rows.loc[rows.metric == "linf", "value"].gt(0).all()  # the attack moved through the BN ResNet
