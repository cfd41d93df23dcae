"""CIFAR-style ResNets (He et al. 2016, the 3x3-stem variant for 32x32 images used by the robustness
library and most CIFAR code): ResNet-18 of the smoothed-explanations paper's Section 4, and smaller
members of the family for the CPU stand-ins.

Layout, with torchvision's module names so layer-wise tools (cascade randomisation) can name them:
``normalize`` (per-channel, inside the model: inputs stay in [0, 1]), ``conv1`` (3x3, stride 1)
``bn1`` ``relu``, ``layer1..layerK`` (BasicBlocks; stride 1 for the first stage, 2 after),
``avgpool``, ``flatten``, ``fc``. Every ReLU is its own ``nn.ReLU`` module (none functional, none
shared), so a softplus surrogate or beta-smoothing replaces all of them.
"""
from __future__ import annotations

from collections import OrderedDict

from torch import nn

from robex.errors import RobexError
from robex.models.normalize import Normalize

# the robustness library's CIFAR-10 normalisation (its ResNet-18 is the paper's adversarially
# trained model)
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2023, 0.1994, 0.2010)


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN, plus the identity or a 1x1 conv-BN shortcut, then ReLU."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(c_out, c_out, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))
        self.relu2 = nn.ReLU()

    def forward(self, x):
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + self.shortcut(x))


def resnet_cifar(name: str = "resnet18_cifar", in_channels: int = 3, num_classes: int = 10, image_size: int = 32,
                 blocks: tuple[int, ...] = (2, 2, 2, 2), width: int = 64, mean=CIFAR_MEAN, std=CIFAR_STD) -> nn.Sequential:
    """``blocks``: BasicBlocks per stage (ResNet-18: 2, 2, 2, 2); ``width``: channels of the first
    stage, doubled at every later stage. ``image_size`` is only checked (global average pooling
    takes any size of at least 2^(stages - 1) pixels)."""
    blocks = tuple(int(b) for b in blocks)
    if not blocks or min(blocks) < 1 or width < 1:
        raise RobexError(f"model.blocks={list(blocks)} and model.width={width}: at least one stage, each with >= 1 block")
    if image_size < 2 ** (len(blocks) - 1):
        raise RobexError(f"model.image_size={image_size} is too small for {len(blocks)} stages")
    if len(mean) != in_channels or len(std) != in_channels:
        raise RobexError(f"model.mean / model.std need {in_channels} values (one per input channel)")
    layers = OrderedDict(normalize=Normalize(mean, std),
                         conv1=nn.Conv2d(in_channels, width, 3, stride=1, padding=1, bias=False),
                         bn1=nn.BatchNorm2d(width), relu=nn.ReLU())
    c_in = width
    for stage, n in enumerate(blocks):
        c_out = width * 2 ** stage
        stage_blocks = []
        for k in range(n):
            stage_blocks.append(BasicBlock(c_in, c_out, stride=(1 if stage == 0 or k > 0 else 2)))
            c_in = c_out
        layers[f"layer{stage + 1}"] = nn.Sequential(*stage_blocks)
    layers.update(avgpool=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten(), fc=nn.Linear(c_in, num_classes))
    net = nn.Sequential(layers)
    net.name = name
    return net
