"""RelEx: a saliency mask learned per image over a batch of noisy copies (the RelEx paper, Eqs. 9-11).

For an image x and the class c to explain, the mask m (x's shape: per channel, full resolution,
initialised U(0, init_max)) minimises

    J(m) = mean_b [ -log p_c(x_b (.) m) - lambda2 log(1 - p_c(x_b (.) (1 - m)) + 1e-7) ] + lambda1 ||m||_1

over x_b = x + n_b, b = 1..n_noise, with fresh Gaussian noise n_b every iteration. ``(.)`` masks to a
fill colour: a (.) m = fill + (a - fill) m, which is the reference code's product in normalised input
space when fill is the model's normalisation mean (a masked pixel becomes the mean colour).

Each iteration takes one SGD step (momentum, PyTorch's convention) on the gradient divided by its L2
norm over the image's mask, then clamps m to [0, 1]. Settings default to the authors' code
(``../shared/reference/relex.md``): 50 copies, sigma = 0.1 of the value range of the image as the
model sees it (:func:`noise_scale`), lambda1 1e-4, lambda2 1, lr 0.1, momentum 0.99, 50 iterations.
The "w/o batch" ablation is ``n_noise: 1, sigma: 0``.

Batching: the images of a chunk and their noise copies, masked by m and by 1 - m, go through the
model in one forward pass per iteration. The masks are independent, so the batched optimisation is
the per-image one (tests/test_relex.py checks it against a loop). Randomness: every image starts
from the same U(0, init_max) draw, and iteration t uses the same (n_noise, C, H, W) standard normal
draw for every image, scaled by the image's own sigma (common random numbers; generators seeded on
every call). A mask therefore depends only on the image, the class and the seed, never on which
other images share its batch.

Resuming (``state_cache``: a folder, e.g. ``${paths.cache_dir}/relex_states``): the optimisation of
a chunk of images is saved every 50 iterations and at its end (the mask, the momentum buffer, the
noise generator's state and the losses), keyed by the model's weights, the images, the classes and
every setting but ``iterations``. A later call with more iterations continues from the latest saved
state instead of starting over: the paper's 100-iteration variant after the 50-iteration one costs
50 more iterations, and its masks are bitwise those of a run from scratch (the same draws in the
same order; tests/test_relex.py).

``fill``: ``auto`` (the mean of the model's :class:`~robex.models.normalize.Normalize` layer when it
has one, else each image's own channel mean), ``normalize`` (that layer's mean; an error without
one), ``image_mean``, or a number (a constant grey level in [0, 1]).
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from robex.cache import Cache
from robex.errors import RobexError, check_range
from robex.explainers.base import Explainer
from robex.models.normalize import Normalize
from robex.utils import stable_hash

FILLS = ("auto", "normalize", "image_mean")


def normalize_layer(model: nn.Module) -> Normalize | None:
    """The model's first :class:`Normalize` module, or None."""
    return next((m for m in model.modules() if isinstance(m, Normalize)), None)


def fill_colour(model: nn.Module, x: torch.Tensor, fill) -> torch.Tensor:
    """The colour a masked pixel takes, broadcastable to x: (1 or B, C, 1, 1)."""
    if not isinstance(fill, str):
        return torch.full((1, x.shape[1], 1, 1), check_range("relex fill", fill, 0.0, 1.0),
                          dtype=x.dtype, device=x.device)
    if fill not in FILLS:
        raise RobexError(f"relex fill={fill!r}: choose one of {', '.join(FILLS)} or a number in [0, 1]")
    norm = normalize_layer(model) if fill in ("auto", "normalize") else None
    if norm is not None:
        mean = norm.mean.to(x)
        return mean if mean.shape[1] == x.shape[1] else mean.mean(1, keepdim=True).expand(1, x.shape[1], 1, 1)
    if fill == "normalize":
        raise RobexError("relex fill=normalize: the model has no Normalize layer; use fill=auto, image_mean "
                         "or a grey level in [0, 1]")
    return x.mean(dim=(2, 3), keepdim=True)


def noise_scale(model: nn.Module, x: torch.Tensor, sigma: float) -> torch.Tensor:
    """(B, 1, C or 1, 1, 1): the pixel-space standard deviation of the copies' noise, sigma times the
    value range of the image as the model sees it. With a Normalize layer that is the normalised
    image's range (the reference code's), mapped back per channel by the layer's std."""
    norm = normalize_layer(model)
    seen = norm(x) if norm is not None and norm.mean.shape[1] == x.shape[1] else x
    flat = seen.flatten(1)
    scale = (sigma * (flat.amax(1) - flat.amin(1))).view(-1, 1, 1, 1, 1)
    return scale * norm.std.to(x).unsqueeze(0) if seen is not x else scale


class RelEx(Explainer):
    """Learned mask over noisy copies (module docstring). :meth:`attribute` returns the mask m in
    [0, 1], x's shape; :meth:`optimise` also returns the loss of every iteration."""

    differentiable = False
    stochastic = True

    def __init__(self, name: str = "relex", iterations: int = 50, n_noise: int = 50, sigma: float = 0.1,
                 lambda1: float = 1e-4, lambda2: float = 1.0, lr: float = 0.1, momentum: float = 0.99,
                 init_max: float = 0.01, fill="auto", seed: int = 0, max_batch: int = 100, normalise=None,
                 state_cache: str | None = None):
        super().__init__(name, normalise)
        if int(iterations) < 1:
            raise RobexError(f"{name} iterations={iterations} must be >= 1")
        if int(n_noise) < 1:
            raise RobexError(f"{name} n_noise={n_noise} must be >= 1")
        self.iterations, self.n_noise = int(iterations), int(n_noise)
        self.sigma = check_range(f"{name} sigma", sigma, 0.0, 10.0)
        self.lambda1 = check_range(f"{name} lambda1", lambda1, 0.0, 1e6)
        self.lambda2 = check_range(f"{name} lambda2", lambda2, 0.0, 1e6)
        self.lr = check_range(f"{name} lr", lr, 0.0, 1e6)
        self.momentum = check_range(f"{name} momentum", momentum, 0.0, 1.0)
        self.init_max = check_range(f"{name} init_max", init_max, 0.0, 1.0)
        if isinstance(fill, str) and fill not in FILLS:
            raise RobexError(f"{name} fill={fill!r}: choose one of {', '.join(FILLS)} or a number in [0, 1]")
        self.fill, self.seed, self.max_batch = fill, int(seed), int(max_batch)
        self.state_cache = Path(state_cache) if state_cache else None

    # -- resuming (module docstring) -------------------------------------------------------------
    CHECKPOINT_EVERY = 50

    def _settings_key(self, model: nn.Module) -> str:
        """Everything but the iteration count that a chunk's optimisation depends on, except the chunk."""
        h = hashlib.sha256()
        for t in list(model.state_dict().values()):
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
        settings = {k: getattr(self, k) for k in ("n_noise", "sigma", "lambda1", "lambda2", "lr", "momentum",
                                                  "init_max", "seed", "max_batch")}
        return stable_hash({"model": h.hexdigest(), "fill": str(self.fill), "version": self.version, **settings})

    def _chunk_kind(self, settings: str, xc: torch.Tensor, tc: torch.Tensor) -> str:
        """The cache kind (a folder under ``state_cache``) of one chunk's saved states, one file per
        iteration count."""
        h = hashlib.sha256(xc.detach().cpu().contiguous().numpy().tobytes())
        h.update(tc.detach().cpu().numpy().tobytes())
        return f"{settings}/{h.hexdigest()[:24]}"

    def _load_state(self, cache: Cache, kind: str) -> dict | None:
        """The saved state with the most iterations not above ``self.iterations`` (a damaged one is
        skipped: :meth:`Cache.load_state` checks its checksum), or None."""
        folder = cache.root / kind
        done = sorted((int(p.stem) for p in folder.glob("*.pt") if p.stem.isdigit() and int(p.stem) <= self.iterations),
                      reverse=True) if folder.is_dir() else []
        for n in done:
            state = cache.load_state(kind, str(n))
            if state is not None:
                return state
        return None

    def loss(self, model: nn.Module, m: torch.Tensor, noisy: torch.Tensor, fill: torch.Tensor,
             target: torch.Tensor) -> torch.Tensor:
        """J(m) per image: ``m`` (b, C, H, W), ``noisy`` (b, n, C, H, W) copies, ``fill`` broadcastable
        to (b, 1, C, H, W) entries per image. One forward pass over the b x n x 2 masked inputs."""
        b, n = noisy.shape[:2]
        mm = m.unsqueeze(1)
        f = fill.unsqueeze(1)
        keep = f + (noisy - f) * mm                  # the masked pixels' complement kept
        drop = f + (noisy - f) * (1 - mm)
        logp = F.log_softmax(model(torch.cat([keep, drop]).flatten(0, 1)), 1)
        cls = target.repeat_interleave(n).repeat(2).view(-1, 1)
        logp = logp.gather(1, cls).view(2, b, n)
        p_drop = logp[1].exp()
        data = (-logp[0] - self.lambda2 * torch.log(1 - p_drop + 1e-7)).mean(1)
        return data + self.lambda1 * m.abs().flatten(1).sum(1)

    def optimise(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mask (B, C, H, W), losses (iterations, B)): the loss at each iteration before its step."""
        shape = x.shape[1:]
        gen = torch.Generator(device=x.device).manual_seed(self.seed)
        init = torch.rand((1, *shape), generator=gen, dtype=x.dtype, device=x.device) * self.init_max
        x = x.detach()
        fill = fill_colour(model, x, self.fill)
        scale = noise_scale(model, x, self.sigma)
        per_chunk = max(1, self.max_batch // (2 * self.n_noise))
        cache = Cache(self.state_cache) if self.state_cache is not None else None
        settings = self._settings_key(model) if cache is not None else None
        masks, losses = [], []
        for s in range(0, len(x), per_chunk):
            xc, tc = x[s:s + per_chunk], target[s:s + per_chunk]
            fc = fill if fill.shape[0] == 1 else fill[s:s + per_chunk]
            m, buf, history = init.expand_as(xc).clone(), None, []
            gen = torch.Generator(device=x.device).manual_seed(self.seed + 1)  # the same draws for every chunk
            kind = self._chunk_kind(settings, xc, tc) if cache is not None else None
            state = self._load_state(cache, kind) if cache is not None else None
            done = 0
            if state is not None:
                done = int(state["iterations"])
                m, buf = state["m"].to(x.device), state["buf"].to(x.device)
                gen.set_state(state["generator"])
                history = list(state["losses"].to(x.device).unbind(0))
            for it in range(done, self.iterations):
                noise = torch.randn((self.n_noise, *shape), generator=gen, dtype=x.dtype, device=x.device)
                noisy = xc.unsqueeze(1) + noise.unsqueeze(0) * scale[s:s + per_chunk]
                with torch.enable_grad():
                    m.requires_grad_(True)
                    j = self.loss(model, m, noisy, fc, tc)
                    (g,) = torch.autograd.grad(j.sum(), m)
                m = m.detach()
                history.append(j.detach())
                g = g / g.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * len(shape)))
                buf = g if buf is None else self.momentum * buf + g
                m = (m - self.lr * buf).clamp_(0.0, 1.0)
                if cache is not None and (it + 1 == self.iterations or (it + 1) % self.CHECKPOINT_EVERY == 0):
                    cache.save_state(kind, str(it + 1), {"iterations": it + 1, "m": m, "buf": buf,
                                                         "generator": gen.get_state(),
                                                         "losses": torch.stack(history)})
            masks.append(m)
            losses.append(torch.stack(history))
        return torch.cat(masks), torch.cat(losses, 1)

    def attribute(self, model, x, target, create_graph=False):
        if create_graph:
            raise RobexError(f"{self.name} is an optimisation, not differentiable: an attack cannot "
                             "back-propagate through it (attack a differentiable explainer and transfer)")
        return self.optimise(model, x, target)[0]
