"""The stages of one robex job: data -> trained model -> defense -> task (explain / attack / measure)
-> rows of ``metrics.csv``.

``run(cfg)`` is the whole job; the pieces below are reused by tasks. Trained and defended models
are cached by a hash of exactly the config that determines them (``train_spec`` / ``defense_spec``),
and so is every finished job (``job_spec``), so a sweep trains its baseline once and a re-run of a
finished sweep recomputes nothing.
"""
from __future__ import annotations

import copy
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from robex.attacks.base import AttackResult
from robex.cache import Cache
from robex.data.identity import data_identity
from robex.errors import RobexError, user_error
from robex.models.training import accuracy
from robex.report.samples import FILE as SAMPLES_FILE, split_samples
from robex.report.schema import ROWS_VERSION, write_metrics
from robex.threats import NONE, Threat
from robex.trainers.fit import TRAINING_VERSION, check_finite, fit
from robex.trainers.losses import CrossEntropy
from robex.trainers.optim import optimiser_spec, schedule_spec
from robex.utils import (atomic_write_npz, atomic_write_text, failpoint, machine_description, resolve_device,
                         seed_everything)

log = logging.getLogger("robex")

_DATA_MEMO: dict[str, Any] = {}
_MODEL_MEMO: dict[str, torch.nn.Module] = {}
_DEFENSE_MEMO: dict[str, Any] = {}


def _copy_of(model: torch.nn.Module) -> torch.nn.Module:
    """What the model memo hands out: a frozen deep copy, so a task that changes its model in place
    (cascade randomisation, a surrogate swap) cannot change the model a later job receives."""
    return freeze(copy.deepcopy(model))


def _plain(node) -> Any:
    return OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node


def _without(d: dict, *keys: str) -> dict:
    return {k: v for k, v in d.items() if k not in keys}


# Config keys that never change a computed number (paths, progress bars, micro-batch sizes).
_NEUTRAL = ("root", "show_progress", "micro_batch", "batch_size_eval", "name", "cache_dir", "state_cache")


def _spec(node) -> dict:
    d = _plain(node) or {}
    return {k: v for k, v in d.items() if k not in _NEUTRAL}


@dataclass
class Context:
    """Everything a task needs: the config, device, cache and lazily built data / models."""

    cfg: DictConfig
    device: torch.device
    cache: Cache
    timings: dict = field(default_factory=dict)  # seconds: "training", then one entry per defense
    _attack: Any = None

    # -- names written into every CSV row -----------------------------------------------------
    def names(self) -> dict:
        return job_names(self.cfg)

    def attack(self):
        """The job's attack object (built once)."""
        if self._attack is None:
            self._attack = instantiate(self.cfg.attack)
        return self._attack

    def attack_columns(self) -> dict:
        """The job attack's threat (``threat``, ``budget``, ``units``) and the explainer it optimises
        against (``attacked_explainer``; empty for an attack on the prediction or no attack)."""
        attack = self.attack()
        on_explanation = getattr(attack, "on_explanation", False)
        return {**attack.threat.columns(),
                "attacked_explainer": self.cfg.explainer.name if on_explanation else ""}

    # -- data -----------------------------------------------------------------------------------
    def data(self):
        key = str(_spec(self.cfg.dataset) | {"root": self.cfg.dataset.get("root")})
        if key not in _DATA_MEMO:
            _DATA_MEMO.clear()
            _DATA_MEMO[key] = instantiate(self.cfg.dataset)
        data = _DATA_MEMO[key]
        limit = self.cfg.train.get("limit")
        if limit:
            data = copy.copy(data)
            data.train_x, data.train_y = data.train_x[:limit], data.train_y[:limit]
        return data

    # -- models ---------------------------------------------------------------------------------
    def train_spec(self) -> dict:
        return train_spec(self.cfg)

    def new_model(self) -> torch.nn.Module:
        """The model as configured, checked to accept the data set's images. The data is loaded
        first, so a missing data root is reported before a missing pretrained weight file."""
        data = self.data()
        model = prepare_model(instantiate(self.cfg.model), self.device)
        check_accepts(model, data, self.cfg.model.name)
        return model

    def trained_model(self) -> torch.nn.Module:
        """The normally trained model (cached)."""
        spec = self.train_spec()
        key = self.cache.key(spec)
        if key in _MODEL_MEMO:
            return _copy_of(_MODEL_MEMO[key])
        seed_everything(int(self.cfg.seed))
        model = self.new_model()
        epochs = self.cfg.train.epochs
        if epochs is None:
            epochs = self.data().default_epochs
        with self.cache.lock("models", key, f"training the baseline {self.cfg.model.name}"):
            model = self._load_or_train(model, spec, key, epochs)
        freeze(model)
        _MODEL_MEMO[key] = model
        return _copy_of(model)

    def _load_or_train(self, model, spec: dict, key: str, epochs):
        """``model`` as built, with the cached weights, or trained and saved; its parameters checked
        finite once, whichever way it came (a diverged run is never cached)."""
        name = self.cfg.model.name
        state = self.cache.load_state("models", key) if epochs else None
        if not epochs:
            log.info("model %s used as built (pretrained weights or none): no training", name)
            check_finite(model, f"baseline model {name} (as built)")
        elif state is not None:
            model.load_state_dict(state["state_dict"])
            log.info("baseline model: cached %s", key)
            check_finite(model, f"baseline model {name} (cache entry models/{key})")
        else:
            data = self.data()
            t0 = time.perf_counter()
            t = self.cfg.train
            info = fit(model, CrossEntropy(), data.train_x, data.train_y, epochs=int(epochs),
                       batch_size=int(t.batch_size), optimiser=optimiser_spec(t.optimiser),
                       schedule=schedule_spec(t.get("schedule")),
                       generator=torch.Generator().manual_seed(int(self.cfg.seed)),
                       validation=(data.val_x, data.val_y), desc="train epoch",
                       show_progress=self.cfg.progress)
            self.timings["training"] = time.perf_counter() - t0
            log.info("baseline model trained in %.1f s (best val accuracy %.4f)",
                     self.timings["training"], info["best_val_accuracy"])
            check_finite(model, f"baseline model {name} (trained)")  # before saving: never cache a diverged run
            self.cache.save_state("models", key, {"state_dict": model.state_dict(),
                                                  "spec": str(spec)})
        return model

    def initial_model(self) -> torch.nn.Module:
        """The model as initialised before training (seeded like the baseline's training), the start
        of a defense that trains from scratch (``start = "init"``)."""
        seed_everything(int(self.cfg.seed))
        return freeze(self.new_model())

    def defense_spec(self, defense_cfg, stage: int, on: tuple | None = None) -> dict:
        """What determines a defended model: its start point (the trained model's spec, or the
        chained model's), the defense's config and where it starts (``trained`` / ``init``), the
        stage."""
        base_spec = self.train_spec() if on is None else on[0]
        start = getattr(self.defense(defense_cfg), "start", "trained")
        return {"base": base_spec, "defense": _spec(_without(_plain(defense_cfg), "iterations")),
                "start": start, "stage": stage}

    def defense(self, defense_cfg):
        """The defense object for a config (one per config, so state such as ATEX's teacher
        directions is shared by all its stages)."""
        key = self.cache.key(_plain(defense_cfg))
        if key not in _DEFENSE_MEMO:
            _DEFENSE_MEMO[key] = instantiate(defense_cfg)
        return _DEFENSE_MEMO[key]

    def defended_model(self, defense_cfg=None, stages: int | None = None,
                       on: tuple | None = None) -> torch.nn.Module:
        """The model after ``stages`` stages of the defense (default: all), each stage cached, so k
        iterations reuse the first k-1. A defense is a trainer: it starts from (and uses as teacher)
        the trained model, or the initial model when its ``start`` is ``"init"`` (training from
        scratch), or ``on = (spec, getter)``: another cached model, to chain defenses. A defense with
        a ``transform(model) -> model`` (a structural change) has it applied to every model it
        builds, the reloaded cached stages included, so the change never vanishes."""
        defense_cfg = self.cfg.defense if defense_cfg is None else defense_cfg
        defense = self.defense(defense_cfg)
        stages = defense.stages if stages is None else stages
        if on is not None:
            start = on[1]
        else:
            start = self.initial_model if getattr(defense, "start", "trained") == "init" else self.trained_model
        transform = getattr(defense, "transform", None) or (lambda m: m)
        if stages == 0:
            return transform(start())
        spec = self.defense_spec(defense_cfg, stages, on)
        key = self.cache.key(spec)
        if key in _MODEL_MEMO:
            return _copy_of(_MODEL_MEMO[key])
        with self.cache.lock("defended", key, f"{defense.name} stage {stages}"):
            model = self._load_or_defend(defense, defense_cfg, stages, on, start, transform, spec, key)
        freeze(model)
        _MODEL_MEMO[key] = model
        return _copy_of(model)

    def _load_or_defend(self, defense, defense_cfg, stages: int, on, start, transform, spec: dict, key: str):
        """The defended model of one stage: cached, else built from the previous stage and saved."""
        state = self.cache.load_state("defended", key)
        model = transform(self.new_model())
        if state is not None:
            model.load_state_dict(state["state_dict"])
            check_finite(model, f"{defense.name} stage {stages} from the cache ({key})")
            log.info("%s stage %d: cached %s", defense.name, stages, key)
        else:
            previous = self.defended_model(defense_cfg, stages - 1, on)
            model.load_state_dict(previous.state_dict())
            for p in model.parameters():
                p.requires_grad_(True)
            seed_everything(int(self.cfg.seed) + stages)
            t0 = time.perf_counter()
            info = defense.apply_stage(stages, start(), model, self.data())
            dt = time.perf_counter() - t0
            self.timings[defense.name] = self.timings.get(defense.name, 0.0) + dt
            log.info("%s stage %d done in %.1f s (%s)", defense.name, stages, dt, info)
            self.cache.save_state("defended", key, {"state_dict": model.state_dict(), "spec": str(spec)})
        return model

    def clean_attribution(self, explainer, model, x: torch.Tensor, target: torch.Tensor, target_kind: str) -> torch.Tensor:
        """The job explainer's raw attribution of the first n_eval test images ``x`` for the class
        ``target`` (chosen by ``target_kind``), cached (``maps/``) across jobs that differ only in
        their attack or task, e.g. the eps sweep of a RelEx preset. Not cached for a stochastic
        explainer drawing from torch's global generator (``seed: null``): its map depends on the
        job's random stream."""
        if explainer.stochastic and getattr(explainer, "seed", None) is None:
            return explainer.attribute(model, x, target).detach()
        spec = {"train": train_spec(self.cfg), "defense": _spec(self.cfg.defense), "explainer": _spec(self.cfg.explainer),
                "n_eval": self.cfg.n_eval, "seed": int(self.cfg.seed), "target": target_kind,
                "maps_version": MAPS_VERSION}
        key = self.cache.key(spec)
        with self.cache.lock("maps", key, f"the clean maps of {explainer.name}"):
            state = self.cache.load_state("maps", key)
            if state is not None and state["raw"].shape[0] == len(x):
                log.info("clean maps of %s: cached %s", explainer.name, key)
                return state["raw"].to(x.device)
            raw = explainer.attribute(model, x, target).detach()
            self.cache.save_state("maps", key, {"raw": raw.cpu(), "spec": str(spec)})
        return raw

    def attack_result(self, attack, fooled, fooled_cfg, model, x: torch.Tensor, target: torch.Tensor,
                      images: str, target_kind: str, **kwargs):
        """The job attack's :class:`~robex.attacks.base.AttackResult` on ``x`` (the images that
        ``images`` names, e.g. ``first n_eval``) for the classes ``target`` (chosen by ``target_kind``),
        cached (``attacks/``) across jobs that differ only in the explainer they score: an attack on
        the prediction (PGD) reads no explainer, and a transfer attack reads only the one it fools
        (``fooled``, built from ``fooled_cfg``). So a sweep that scores five explainers on one attack
        (RelEx Fig. 4, an eps sweep of Table 1) attacks once per model and eps. ``kwargs`` (a
        targeted attack's ``h_target``) must follow from the same spec. Not cached for a fooled
        explainer that draws from torch's global generator (``seed: null``), nor for ``attack=none``."""
        on_explanation = getattr(attack, "on_explanation", False)
        if getattr(attack, "name", "none") == "none" or (
                on_explanation and fooled.stochastic and getattr(fooled, "seed", None) is None):
            return attack(model, fooled, x, target, **kwargs)
        spec = {"train": train_spec(self.cfg), "defense": _spec(self.cfg.defense), "attack": _spec(self.cfg.attack),
                "fooled": _spec(fooled_cfg) if on_explanation else None, "n_eval": self.cfg.n_eval,
                "images": images, "seed": int(self.cfg.seed), "target": target_kind,
                "targeted_inputs": sorted(kwargs), "attacks_version": ATTACKS_VERSION}
        key = self.cache.key(spec)
        with self.cache.lock("attacks", key, f"the {attack.name} attack"):
            state = self.cache.load_state("attacks", key)
            if state is not None and state["x_adv"].shape == x.shape:
                log.info("attack %s: cached %s", attack.name, key)
                return AttackResult(state["x_adv"].to(x.device), dict(state["facts"]))
            t0 = time.perf_counter()
            result = attack(model, fooled, x, target, **kwargs)
            self.timings["attack"] = self.timings.get("attack", 0.0) + time.perf_counter() - t0
            self.cache.save_state("attacks", key, {"x_adv": result.x_adv.detach().cpu(),
                                                   "facts": {k: v.detach().cpu() for k, v in result.facts.items()},
                                                   "spec": str(spec)})
        return result

    def test_accuracy(self, model) -> float:
        data = self.data()
        limit = self.cfg.get("accuracy_limit")
        x, y = (data.test_x[:limit], data.test_y[:limit]) if limit else (data.test_x, data.test_y)
        return accuracy(model, x.to(self.device), y.to(self.device), batch_size=200)

    # -- rows -----------------------------------------------------------------------------------
    def row(self, metric: str, value: float, se: float = float("nan"), n: int = 0, **columns) -> dict:
        """One long-format record (see :mod:`robex.report.schema`). Names, threat, attacked
        explainer and the defense's budget come from the job unless ``columns`` override them; a row
        whose ``attack`` is overridden to ``none`` (a clean measurement) records no threat."""
        data = self.data()
        rec = {**self.names(), "source": data.source, **self.attack_columns(),
               "defense_budget": float(self.defense(self.cfg.defense).budget),
               "step": 0, "step_axis": "defense_stage", "seed": int(self.cfg.seed), "n": int(n),
               "metric": metric, "metric_params": "", "higher_is_better": "",
               "value": float(value), "se": float(se)}
        if columns.get("attack") == "none":
            rec.update(NONE.columns(), attacked_explainer="")
        rec.update(columns)
        return rec


def prepare_model(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """Move to the device; on the CPU, conv nets use channels_last (2-5x faster here, measured in
    ``make bench``); eval mode."""
    model = model.to(device)
    if device.type == "cpu" and any(isinstance(m, torch.nn.Conv2d) for m in model.modules()):
        model = model.to(memory_format=torch.channels_last)
    return model.eval()


def check_accepts(model: torch.nn.Module, data, model_name: str) -> None:
    """One forward pass of one test image (eval mode, no gradient: no state or RNG is touched);
    a model that cannot take the data set's image size or channels is a one-line error naming both,
    before any training."""
    x = data.test_x[:1] if len(data.test_x) else data.val_x[:1]
    if not len(x):
        return
    device = next(iter(model.parameters()), torch.empty(0)).device
    try:
        with torch.no_grad():
            logits = model(x.to(device))
    except RuntimeError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RobexError(f"model={model_name} cannot take dataset={data.name} images of shape "
                         f"{tuple(x.shape[1:])} (C, H, W): {reason}; choose a model made for this "
                         f"image size (conf/model/)") from None
    if logits.dim() != 2 or logits.shape[1] < data.num_classes:
        raise RobexError(f"model={model_name} gives {tuple(logits.shape[1:])} outputs per image but "
                         f"dataset={data.name} has {data.num_classes} classes: set model.num_classes="
                         f"{data.num_classes}")


def freeze(model: torch.nn.Module) -> torch.nn.Module:
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


# -- the job --------------------------------------------------------------------------------------
def train_spec(cfg: DictConfig) -> dict:
    """What determines the normally trained model: the dataset's settings and the identity of its
    files (``data``: a content fingerprint, never the path), the model, the training settings, the
    seed and ``training_version`` (the training loop's code version, bumped when a change to it
    alters the trained weights)."""
    return {"dataset": _spec(cfg.dataset), "data": data_identity(cfg.dataset), "model": _spec(cfg.model),
            "train": _plain(cfg.train), "seed": int(cfg.seed), "training_version": TRAINING_VERSION}


def job_spec(cfg: DictConfig) -> dict:
    """Everything that determines a job's numbers (not where it writes, nor which paper asked). The
    threat enters through the attack's and the defense's own (resolved) parameters, so a job that
    does not read it is not recomputed when it changes. ``rows_version``: the row schema's version
    (cached rows are rows of that schema)."""
    return {"train": train_spec(cfg), "defense": _spec(cfg.defense),
            "explainer": _spec(cfg.explainer), "attack": _spec(cfg.attack), "task": _spec(cfg.task),
            "n_eval": cfg.n_eval, "accuracy_limit": cfg.get("accuracy_limit"), "seed": cfg.seed,
            "rows_version": ROWS_VERSION}


_ABSENT = object()
MAPS_VERSION = 1  # the layout of cached clean attributions (maps/): bump when it changes
ATTACKS_VERSION = 1  # the layout of cached attack results (attacks/): bump when it changes


def apply_debug(cfg: DictConfig) -> None:
    """Apply a debug mode (``debug=tiny``): ``debug.options.<group>.<option>`` holds the dotted keys
    to set in the job's chosen option of that group. Strict, so nothing runs at full size unnoticed:
    an option with no entry, or an entry naming a key the option lacks, is an error."""
    debug = cfg.get("debug") or {}
    options = debug.get("options") or {}
    mode = debug.get("name", "debug")
    where = f"conf/debug/{mode}.yaml"
    for group, table in options.items():
        chosen = cfg[group].get("name")
        if chosen not in table:
            raise RobexError(f"debug={mode} has no entry for {group} option {chosen!r}: add "
                             f"'{chosen}: {{...}}' under debug.options.{group} in {where} "
                             f"(an empty {{}} if it has nothing to shrink)")
        for k, v in (table[chosen] or {}).items():
            path = f"{group}.{k}"
            if OmegaConf.select(cfg, path, default=_ABSENT) is _ABSENT:
                raise RobexError(f"debug={mode}: {path} matches nothing in {group} option {chosen!r} "
                                 f"(fix debug.options.{group}.{chosen} in {where})")
            OmegaConf.update(cfg, path, v, merge=False)


def _integer(cfg: DictConfig, key: str, low: int, allow_none: bool = False) -> None:
    value = OmegaConf.select(cfg, key)
    if value is None and allow_none:
        return
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= low
    if not ok:
        allowed = f"an integer >= {low}" + (" or null" if allow_none else "")
        raise RobexError(f"{key}={value!r} is not allowed: it must be {allowed}")


def _writable(key: str, path) -> None:
    """The folder exists or can be made, and a file can be written in it."""
    import tempfile

    try:
        Path(path).mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".robex-write-check"):
            pass
    except OSError as exc:
        raise RobexError(f"{key}={path} cannot be written ({exc.strerror or exc}): choose a folder "
                         f"robex may write to") from None


def validate(cfg: DictConfig) -> None:
    """Fail fast, before any training, on a bad value, each with one line naming the key, the value
    and what is allowed: the top-level numbers, the device, the threat, the folders robex writes,
    and every option's settings (each group is built once: an unknown or missing setting is named)."""
    _integer(cfg, "seed", 0)
    _integer(cfg, "n_eval", 1)
    _integer(cfg, "accuracy_limit", 1, allow_none=True)
    _integer(cfg, "train.epochs", 0, allow_none=True)
    _integer(cfg, "train.batch_size", 1)
    _integer(cfg, "train.limit", 1, allow_none=True)
    optimiser_spec(cfg.train.optimiser), schedule_spec(cfg.train.get("schedule"))
    device = str(cfg.device)
    if device != "auto":
        try:
            dev = torch.device(device)
        except RuntimeError:
            raise RobexError(f"device={device!r} is not a device: use auto, cpu or cuda[:n]") from None
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise RobexError(f"device={device} but this machine has no CUDA device: use device=auto or cpu")
    Threat.from_config(cfg.threat)
    weights = cfg.model.get("weights_path")
    if weights and not Path(str(weights)).is_file():  # before the data: a typo costs no loading
        raise RobexError(f"model.weights_path={weights} does not exist: put the {cfg.model.get('name', 'model')} "
                         f"state_dict there")
    if cfg.get("use_cache", True):
        _writable("paths.cache_dir", cfg.paths.cache_dir)
    for group in ("explainer", "attack", "defense", "task"):
        try:
            instantiate(cfg[group])
        except Exception as exc:
            err = user_error(exc)
            if err is not None:
                raise err from None
            cause = exc
            while cause.__cause__ is not None:
                cause = cause.__cause__
            if isinstance(cause, TypeError):  # an unknown or missing setting of the option
                raise RobexError(f"{group}={cfg[group].get('name')}: {cause} (check the {group} "
                                 f"settings against conf/{group}/)") from None
            raise


def output_dir(cfg: DictConfig) -> Path:
    try:
        from hydra.core.hydra_config import HydraConfig

        return Path(HydraConfig.get().runtime.output_dir)
    except ValueError:  # not running under @hydra.main
        return Path(cfg.paths.output_dir)


def run(cfg: DictConfig) -> pd.DataFrame:
    """Run one job and write its ``metrics.csv``; returns the rows."""
    OmegaConf.set_struct(cfg, False)
    apply_debug(cfg)
    validate(cfg)
    out = output_dir(cfg)
    _writable("the job's output folder", out)
    if cfg.get("debug"):  # Hydra saved the config before the debug overrides: keep what really ran
        atomic_write_text(out / "config_as_run.yaml", OmegaConf.to_yaml(cfg))
    cache = Cache(cfg.paths.cache_dir, enabled=cfg.get("use_cache", True))
    spec = job_spec(cfg)
    key = cache.key(spec)
    t0 = time.perf_counter()
    with cache.lock("jobs", key, "the same job"):
        rows, arrays, samples, reused, compute_s, stages, origin = _load_or_compute(cfg, cache, key, t0)
    if arrays:  # figure data travels with the job's output
        atomic_write_npz(out / "arrays.npz", arrays)
    if samples:  # per-image values of rows (robex/report/samples.py), r<i> = row i of metrics.csv
        atomic_write_npz(out / SAMPLES_FILE, samples)
    rows = finalize_rows(rows, cfg)
    write_metrics(rows, out / "metrics.csv")
    seconds = time.perf_counter() - t0
    atomic_write_text(out / "job.json", json.dumps({"key": key, "cached": reused, "seconds": seconds,
                                                    "compute_s": compute_s, "stages_s": stages,
                                                    "threads": torch.get_num_threads(), "pid": os.getpid(),
                                                    **origin}))
    log.info("job done in %.1f s -> %s", seconds, out / "metrics.csv")
    return rows


def stage_split(timings: dict, compute_s: float) -> dict:
    """Where a computed job's time went: ``training`` (the baseline, when this job trained it), one
    entry per defense (the seconds of its stages this job built, as ``Context`` sums them),
    ``attack`` (an attack this job computed through :meth:`Context.attack_result`; absent when it
    came from the cache or the task attacks on its own) and ``task`` (explain / measure: the rest)."""
    split = {"training": 0.0, **timings}
    split["task"] = max(0.0, compute_s - sum(split.values()))
    return split


def _load_or_compute(cfg: DictConfig, cache: Cache, key: str, t0: float):
    """(rows, arrays, samples, reused, compute_s, stages_s, origin) of a job: the cached result, else
    computed and saved; ``samples`` are the per-image values of some rows (``r<i>``: row i; empty for
    a task that keeps none, or a result cached before robex kept them); ``stages_s`` (see
    :func:`stage_split`) is empty for a reused result (nothing was spent); ``origin`` says where and
    when the result was computed (``computed_on``, ``computed_at``; empty for results cached before
    robex recorded them)."""
    cached = cache.load_json("jobs", key)
    arrays = cache.load_arrays("jobs", key) if cached is not None and cached.get("has_arrays") else {}
    reused = cached is not None and arrays is not None
    if reused:
        samples = (cache.load_arrays("samples", key) or {}) if cached.get("has_samples") else {}
        rows = relabel(pd.DataFrame(cached["rows"]), cached.get("names"), job_names(cfg))
        compute_s, stages = cached.get("compute_s"), {}
        origin = {k: cached[k] for k in ("computed_on", "computed_at") if cached.get(k)}
        log.info("job %s: cached result reused", key)
    else:
        seed_everything(int(cfg.seed))
        ctx = Context(cfg, resolve_device(cfg.device), cache)
        task = instantiate(cfg.task)
        result = task(ctx)
        records, arrays = result if isinstance(result, tuple) else (result, {})
        records, samples = split_samples(records)
        rows = pd.DataFrame(records)
        compute_s = time.perf_counter() - t0  # includes training / defenses this job triggered
        stages = stage_split(ctx.timings, compute_s)
        failpoint("job_result")
        if arrays:
            cache.save_arrays("jobs", key, arrays)
        if samples:
            cache.save_arrays("samples", key, samples)
        origin = {"computed_on": machine_description(), "computed_at": time.strftime("%Y-%m-%d")}
        cache.save_json("jobs", key, {"rows": rows.to_dict(orient="list"), "has_arrays": bool(arrays),
                                      "has_samples": bool(samples),
                                      "compute_s": compute_s, "names": job_names(cfg), **origin})
    return rows, arrays, samples, reused, compute_s, stages, origin


def job_names(cfg: DictConfig) -> dict:
    """The option names a job's rows carry (names never enter the cache key)."""
    return {"dataset": cfg.dataset.name, "model": cfg.model.name, "explainer": cfg.explainer.name,
            "attack": cfg.attack.name, "defense": cfg.defense.name}


def relabel(rows: pd.DataFrame, computed_as: dict | None, names: dict) -> pd.DataFrame:
    """Cached rows reused by a job whose options differ only in their names (e.g. ``relex`` and
    ``relex_100`` under debug=tiny) carry the reusing job's names, not the computing job's. The
    explainer's name is also replaced in ``attacked_explainer`` (an attack on the job's own map)."""
    if not computed_as:
        return rows
    rows = rows.copy()
    for col, new in names.items():
        old = computed_as.get(col)
        if old is not None and old != new and col in rows.columns:
            rows[col] = rows[col].replace(old, new)
            if col == "explainer" and "attacked_explainer" in rows.columns:
                rows["attacked_explainer"] = rows["attacked_explainer"].replace(old, new)
    return rows


def finalize_rows(rows: pd.DataFrame, cfg: DictConfig) -> pd.DataFrame:
    """Fill the identifying columns of the schema from the job's config."""
    rows = rows.copy()
    rows["run_name"] = cfg.run_name
    rows["paper"] = cfg.paper.get("key") or ""
    rows["artifact"] = cfg.paper.get("name") or ""
    return rows

