"""The real (online) settings on generated stand-ins: AGG-Mean's VGG16 behind ImageNet normalisation
with random weights on an ImageNet-style folder of generated JPEGs and its human-annotation benchmark;
RelEx's ResNet-50 (a robust checkpoint given by path) and CIFAR-10 ResNet-18; plus the clear errors
when weights or data are missing."""
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


def test_torchvision_networks_take_the_common_model_keys_and_refuse_one_channel():
    from robex.models.pretrained import imagenet_classifier

    net = imagenet_classifier(arch="resnet18", weights=None, num_classes=4, in_channels=3, image_size=64)
    assert net(torch.rand(2, 3, 64, 64)).shape == (2, 4)
    with pytest.raises(RobexError, match="in_channels=1"):
        imagenet_classifier(arch="resnet18", weights=None, in_channels=1)


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


@pytest.mark.slow  # 20-40 s each: make test-slow (keeps make test under 6 minutes)
def test_relex_retrieval_runs_on_a_robust_resnet50_checkpoint_and_imagenet_standins(tmp_path, imagenet_standin):
    """RelEx Table 1 / Fig. 3's real setting: a robust ResNet-50 given as a state_dict file
    (random weights here; 1000 classes as the public robust ImageNet ResNet-50s have), PGD in
    normalised units, RelEx maps of the clean prediction."""
    import torchvision

    ckpt = tmp_path / "robust_resnet50.pt"
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet50().state_dict(), ckpt)
    rows = _cli(["paper=relex_tab1", "hydra.mode=RUN", "dataset=imagenet", f"dataset.root={imagenet_standin}",
                 "dataset.crop=64", "dataset.resize=72", "dataset.n_images=6", "model=resnet50",
                 f"model.weights_path={ckpt}", "train.epochs=0", "n_eval=3",
                 "threat.budget=0.3", "attack.steps=2", "explainer.iterations=2", "explainer.n_noise=2",
                 "progress=false"], tmp_path, {})
    assert (rows["model"] == "resnet50").all()
    linf = rows[rows.metric == "linf"]["value"].iloc[0]
    # 0.3 normalised units are 0.3 x ImageNet std (0.224-0.229) in pixels; two steps of 0.01 move less
    assert 0 < linf <= 0.3 * 0.229 + 1e-6
    r = rows[rows.metric == "retrieval_adv_adv"]
    assert len(r) == 1 and r["n"].iloc[0] == 3 and 0 <= r["value"].iloc[0] <= 1
    rel = rows[rows.metric == "relevance"]["value"].iloc[0]
    assert 0 <= rel <= 1


@pytest.mark.slow
def test_relex_class_conditional_runs_on_resnet18_cifar_and_a_cifar10_miniature(tmp_path, cifar_standin):
    """RelEx Fig. 6's real setting: CIFAR-10 and the CIFAR ResNet-18 (untrained here)."""
    rows = _cli(["paper=relex_fig6", "hydra.mode=RUN", "dataset=cifar10", f"dataset.root={cifar_standin}",
                 "dataset.val_size=20", "model=resnet18_cifar", "train.epochs=0", "n_eval=2",
                 "explainer=relex", "explainer.iterations=2", "explainer.n_noise=2", "progress=false"],
                tmp_path, {})
    assert (rows["model"] == "resnet18_cifar").all() and (rows["dataset"] == "cifar10").all()
    probs = rows[rows.metric.str.startswith("class_softmax")]
    assert len(probs) == 20 and probs["value"].between(0, 1).all()


@pytest.mark.slow
def test_smoothed_class_sensitivity_runs_on_a_coco_miniature_with_a_torchvision_network(tmp_path, coco_standin):
    """Table 1's real setting (COCO two-object images, an ImageNet network) end to end. Random weights
    with a large 'dog' bias (ImageNet class 151) so that the paper's filter keeps the dog + cat image."""
    import torchvision

    torch.manual_seed(0)
    net = torchvision.models.resnet50()
    with torch.no_grad():
        net.fc.bias[151] = 50.0
    torch.save(net.state_dict(), tmp_path / "dog.pt")
    rows = _cli(["paper=smoothed_tab1", "hydra.mode=RUN", "dataset=coco_two_objects", f"dataset.root={coco_standin}",
                 "dataset.crop=64", "dataset.resize=72", "model=resnet50", f"model.weights_path={tmp_path / 'dog.pt'}",
                 "model.image_size=64", "train.epochs=0", "task.top_classes=1000", "progress=false"], tmp_path, {})
    by = rows.set_index("metric")
    assert by.loc["images_kept", "value"] >= 1 and by.loc["images_seen", "value"] >= by.loc["images_kept", "value"]
    shares = rows[rows.metric.str.startswith("top_k_in_mask")]
    assert len(shares) == 2 and shares["value"].between(0, 1).all()
