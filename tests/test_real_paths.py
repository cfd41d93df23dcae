"""The real (online) settings of AGG-Mean on generated stand-ins: VGG16 behind ImageNet
normalisation with random weights on an ImageNet-style folder of generated JPEGs, and the
human-annotation benchmark loader + task; plus the clear errors when weights or data are missing."""
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from robex.data.annotations import load_annotation_benchmark
from robex.data.imagenet import load_imagenet_val
from robex.errors import RobexError, user_error

ROOT = Path(__file__).resolve().parents[1]


def test_imagenet_loader_on_generated_folder(imagenet_standin):
    d = load_imagenet_val(root=str(imagenet_standin), n_images=5)
    assert d.test_x.shape == (5, 3, 224, 224) and 0 <= d.test_x.min() and d.test_x.max() <= 1
    assert set(d.test_y.tolist()) <= {0, 1, 2}
    with pytest.raises(RobexError, match="dataset.root"):
        load_imagenet_val(root=None)


def test_annotation_loader_on_generated_benchmark(annotation_standin):
    d = load_annotation_benchmark(root=str(annotation_standin))
    masks = d.extras["test_masks"]
    assert d.test_x.shape == (3, 3, 224, 224) and masks.shape == (3, 224, 224)
    assert masks.max() == 1.0 and masks.min() == 0.0
    with pytest.raises(RobexError, match="images"):
        load_annotation_benchmark(root="/nonexistent")


def test_pretrained_weights_missing_is_a_clear_error(monkeypatch, tmp_path):
    from robex.models.pretrained import imagenet_classifier

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty cache: torchvision would download
    with pytest.raises(RobexError, match="hub/checkpoints|weights_path"):
        imagenet_classifier(arch="vgg16", weights="IMAGENET1K_V1")
    with pytest.raises(RobexError, match="does not exist"):
        imagenet_classifier(arch="vgg16", weights_path=str(tmp_path / "nope.pth"))



def test_a_robust_checkpoint_loads_by_weights_only_and_a_pickle_is_refused(tmp_path):
    """The RelEx robust model is a user checkpoint: MadryLab's layout ({"model": {"module.model.*",
    "module.attacker.*", "module.normalizer.*"}}) loads; a file that needs pickled code does not."""
    import torchvision

    from robex.models.pretrained import imagenet_classifier

    net = torchvision.models.resnet18(weights=None, num_classes=9)
    state = {f"module.model.{k}": v for k, v in net.state_dict().items()}
    state |= {f"module.attacker.model.{k}": v for k, v in net.state_dict().items()}
    state["module.normalizer.new_mean"] = torch.zeros(3, 1, 1)
    torch.save({"model": state, "epoch": 3}, tmp_path / "robust.pt")
    loaded = imagenet_classifier(arch="resnet18", weights_path=str(tmp_path / "robust.pt"), num_classes=9)
    torch.testing.assert_close(loaded[1].fc.weight, net.fc.weight)

    import argparse

    torch.save({"model": argparse.Namespace(arch="resnet18")}, tmp_path / "pickle.pt")  # needs unpickling code
    with pytest.raises(RobexError, match="cannot be loaded with weights_only=True"):
        imagenet_classifier(arch="resnet18", weights_path=str(tmp_path / "pickle.pt"), num_classes=9)


def _cli(args, tmp, env_extra):
    env = dict(os.environ, PYTHONPATH=str(ROOT), **env_extra)
    r = subprocess.run([sys.executable, "run.py", *args, f"paths.cache_dir={tmp}/cache",
                        f"hydra.run.dir={tmp}/run"], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return pd.read_csv(tmp / "run" / "metrics.csv")


def test_vgg16_imagenet_map_attack_runs_on_standins(tmp_path, imagenet_standin):
    rows = _cli(["dataset=imagenet", f"dataset.root={imagenet_standin}", "dataset.crop=64", "dataset.resize=72",
                 "dataset.n_images=6", "model=vgg16", "model.weights=null", "train.epochs=0",
                 "task=map_manipulation", "task.n_pairs=2", "task.target_offset=2", "~task.evaluate.integrated_gradients",
                 "~task.evaluate.agg_mean", "~task.evaluate.lrp", "~task.evaluate.guided_backprop",
                 "attack=map_targeted", "attack.iterations=2", "explainer=gradient", "progress=false"],
                tmp_path, {})
    assert set(rows["metric"]) >= {"pcc_delta", "topk_delta", "mse_delta", "image_mse"}
    assert (rows["model"] == "vgg16").all() and (rows["n"] == 2).all()


def test_annotation_alignment_runs_on_standins(tmp_path, annotation_standin):
    rows = _cli(["dataset=mohseni_annotations", f"dataset.root={annotation_standin}", "dataset.crop=64",
                 "dataset.resize=72", "model=resnet50", "model.weights=null", "train.epochs=0",
                 "task=annotation_alignment", "task.explainers.smoothgrad.n_samples=2",
                 "task.explainers.mean_sg_gc.members.smoothgrad.n_samples=2",
                 "task.explainers.integrated_gradients.steps=2", "progress=false"], tmp_path, {})
    sims = rows[rows.metric == "cosine_similarity"].set_index("explainer")["value"]
    assert len(sims) == 8 and sims.between(0, 1).all()
