"""How visible a perturbation is: metrics of kind ``image`` comparing x with the attacked x'.

- :class:`LPIPS` (Zhang et al. 2018, the ``lpips`` package's v0.1 linear layers on an ImageNet
  backbone): the smoothed-explanations paper's measure. Its backbone weights are torchvision's
  ImageNet AlexNet / VGG16, which cannot be downloaded offline. robex reads them itself, with
  ``weights_only=True``: from ``backbone_path`` when given, else from torchvision's own cache file
  (``$TORCH_HOME/hub/checkpoints/alexnet-owt-7be5be79.pth`` or ``vgg16-397923af.pth``, where any
  earlier torchvision download put it). Without them the metric is *unavailable* (the evaluation
  writes an ``lpips_unavailable`` row with the reason) and never reports a number: a random
  backbone is not LPIPS.
- :class:`SSIMDistance` (1 - SSIM, per channel and averaged, skimage's Gaussian settings) and
  :class:`L2Distance` (||x' - x||_2): declared proxies, reported under their own names.
"""
from __future__ import annotations

import contextlib
import io
from pathlib import Path

import torch

from robex.errors import RobexError
from robex.metrics.base import Metric, MetricInfo, nan_where_not_finite
from robex.metrics.similarity import ssim

_BACKBONES = {"alex": ("alexnet", "AlexNet_Weights"), "vgg": ("vgg16", "VGG16_Weights")}


def torchvision_cache_file(net: str) -> Path:
    """Where torchvision keeps the ImageNet weights of LPIPS' backbone once downloaded."""
    import torchvision

    arch, enum = _BACKBONES[net]
    url = getattr(torchvision.models, enum).IMAGENET1K_V1.url
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[1]


class LPIPS(Metric):
    info = MetricInfo(kind="image", higher_is_better=False, range=(0.0, float("inf")),
                      citation="Zhang et al. 2018, 'The unreasonable effectiveness of deep features as a perceptual metric'")

    def __init__(self, net: str = "alex", backbone_path: str | None = None, batch_size: int = 256):
        if net not in _BACKBONES:
            raise RobexError(f"lpips net={net!r}: choose one of {', '.join(_BACKBONES)}")
        self.net, self.batch_size = net, int(batch_size)
        if backbone_path is not None and not Path(str(backbone_path)).is_file():
            raise RobexError(f"lpips backbone_path={backbone_path} does not exist: put torchvision's "
                             f"ImageNet {_BACKBONES[net][0]} state_dict there")
        self.path = Path(str(backbone_path)) if backbone_path is not None else torchvision_cache_file(net)
        self.unavailable = None if self.path.is_file() else (
            f"no ImageNet {_BACKBONES[net][0]} weights at {self.path} (LPIPS needs them; set "
            f"backbone_path or TORCH_HOME)")
        self._model = None

    def params(self):
        return {"net": self.net}

    def _build(self, device):
        import lpips
        import torchvision

        from robex.models.pretrained import load_state_dict

        with contextlib.redirect_stdout(io.StringIO()):  # lpips prints a banner
            model = lpips.LPIPS(net=self.net, pretrained=True, pnet_rand=True, verbose=False)
        features = getattr(torchvision.models, _BACKBONES[self.net][0])()
        features.load_state_dict(load_state_dict(str(self.path), _BACKBONES[self.net][0]))
        features = features.features
        for k in range(1, model.net.N_slices + 1):  # lpips slices torchvision's `features` by index
            for name, module in getattr(model.net, f"slice{k}").named_children():
                module.load_state_dict(features[int(name)].state_dict())
        return model.eval().to(device)

    def __call__(self, inputs):
        if self.unavailable:
            raise RobexError(f"LPIPS unavailable: {self.unavailable}")
        if self._model is None:
            self._model = self._build(inputs.x.device)
        out = []
        with torch.no_grad():
            for s in range(0, len(inputs.x), self.batch_size):
                a, b = inputs.x[s:s + self.batch_size], inputs.x_adv[s:s + self.batch_size]
                out.append(self._model(a * 2 - 1, b * 2 - 1).flatten())  # lpips takes [-1, 1]
        return nan_where_not_finite(torch.cat(out).float(), inputs.x_adv)


class SSIMDistance(Metric):
    """1 - SSIM(x, x') per image: SSIM per channel (Gaussian window 11, sigma 1.5, data range 1),
    averaged over channels (skimage's ``channel_axis``); a declared proxy for LPIPS."""

    info = MetricInfo(kind="image", higher_is_better=False, range=(0.0, 2.0),
                      citation="Wang et al. 2004, 'Image quality assessment: from error visibility to structural similarity'")

    def __call__(self, inputs):
        x, xa = inputs.x, inputs.x_adv
        c = x.shape[1]
        per_channel = ssim(x.reshape(-1, *x.shape[-2:]), xa.reshape(-1, *xa.shape[-2:])).view(len(x), c)
        return nan_where_not_finite(1.0 - per_channel.mean(1), inputs.x_adv)


class L2Distance(Metric):
    """||x' - x||_2 per image (pixel units of [0, 1] images); a declared proxy for LPIPS."""

    info = MetricInfo(kind="image", higher_is_better=False, range=(0.0, float("inf")),
                      citation="robex: Euclidean pixel distance, a declared proxy for LPIPS")

    def __call__(self, inputs):
        d = (inputs.x_adv - inputs.x).flatten(1).double().norm(dim=1).float()
        return nan_where_not_finite(d, inputs.x_adv)
