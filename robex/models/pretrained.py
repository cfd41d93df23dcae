"""Pretrained torchvision ImageNet classifiers (VGG16 for AGG-Mean; VGG19 / ResNet-50 / ResNet-101 for
its Table 2). Weights come from torchvision's cache or a user path; offline, a clear error says where
to put them."""
from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from robex.errors import RobexError
from robex.models.normalize import Normalize


def load_state_dict(path: str, arch: str) -> dict:
    """A state_dict from a checkpoint file, loaded with ``weights_only=True`` (no pickled code).
    Accepts a bare state_dict, {"state_dict": ...} or {"model": ...} (the MadryLab robustness
    library's robust models: its "module.model." prefix is removed, its attacker / normaliser copies
    are dropped, since robex adds its own input normalisation)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise RobexError(f"model.weights_path={path} cannot be loaded with weights_only=True "
                         f"({type(exc).__name__}: {str(exc).splitlines()[0][:120]}): save the {arch} "
                         "state_dict with torch.save(model.state_dict(), path)") from None
    if not isinstance(state, dict):
        raise RobexError(f"model.weights_path={path} holds a {type(state).__name__}, not a state_dict")
    state = state.get("state_dict", state.get("model", state))
    out = {}
    for key, value in state.items():
        if key.startswith(("module.attacker.", "module.normalizer.", "attacker.", "normalizer.")):
            continue
        for prefix in ("module.model.", "module.", "model."):
            if key.startswith(prefix):
                key = key[len(prefix):]
                break
        out[key] = value
    return out


def imagenet_classifier(name: str = "vgg16", arch: str = "vgg16", weights: str | None = "IMAGENET1K_V1",
                        weights_path: str | None = None, num_classes: int = 1000, in_channels: int = 3,
                        image_size: int | None = None) -> nn.Sequential:
    """A torchvision ImageNet classifier (``arch``: vgg16, vgg19, resnet50, resnet101, ...) behind
    ImageNet normalisation: Sequential(Normalize, net), so inputs are [0,1] images (resize 256 /
    centre crop 224 happen in the data loader).

    Weights: ``weights_path`` (a state_dict file), else the torchvision weights enum name ``weights``
    (downloaded into $TORCH_HOME/hub/checkpoints, or taken from there), else random (``weights=null``,
    for tests). In-place ReLUs are made out-of-place so explainers can hook them.

    ``in_channels`` and ``image_size`` are the keys every robex model takes (a preset may set them for
    its stand-in model): the torchvision networks take 3 channels at any size their pooling allows."""
    import torchvision

    if in_channels != 3:
        raise RobexError(f"model {name}: in_channels={in_channels}, but the torchvision ImageNet networks take 3")
    builder = getattr(torchvision.models, arch, None)
    if builder is None:
        raise RobexError(f"model.arch={arch!r} is not a torchvision model")
    if weights_path:
        if not Path(weights_path).is_file():
            raise RobexError(f"model.weights_path={weights_path} does not exist: put the {arch} state_dict there")
        model = builder(weights=None, num_classes=num_classes)
        model.load_state_dict(load_state_dict(weights_path, arch))
    elif weights:
        enum_cls = torchvision.models.get_model_weights(arch)
        try:
            enum = enum_cls[weights]
        except KeyError:
            raise RobexError(f"model.weights={weights!r}: choose one of {[w.name for w in enum_cls]} or null") from None
        try:
            model = builder(weights=enum)
        except Exception as exc:  # offline: URLError
            home = os.environ.get("TORCH_HOME", "~/.cache/torch")
            raise RobexError(
                f"{arch} {weights} weights are not available ({type(exc).__name__}): with internet torchvision "
                f"downloads them; offline, save the state_dict ({Path(enum.url).name}) anywhere and pass "
                f"model.weights_path=<file> (robex loads it with weights_only=True, no pickled code), "
                f"or put it in {home}/hub/checkpoints/") from None
    else:
        model = builder(weights=None, num_classes=num_classes)
    for m in model.modules():
        if isinstance(m, nn.ReLU):
            m.inplace = False
    net = nn.Sequential(Normalize(), model)
    net.name = name
    return net
