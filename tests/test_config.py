"""Every preset composes, every option of every group instantiates, and bad input gives one clear
line (no traceback)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.types import RunMode
from hydra.utils import instantiate

from robex.errors import user_error

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
GROUPS = ["dataset", "model", "explainer", "attack", "defense", "task"]
PRESETS = sorted(p.stem for p in (CONF / "paper").glob("*.yaml"))


def _compose(overrides):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="config", overrides=overrides, return_hydra_config=True)


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_composes_with_its_sweep(preset):
    cfg = _compose([f"paper={preset}"])
    assert cfg.paper.name == preset
    assert cfg.paper.key and cfg.paper.title and cfg.paper.render
    text = (CONF / "paper" / f"{preset}.yaml").read_text()
    assert text.startswith("# @package _global_\n#"), "a preset opens with its header comment"
    assert cfg.hydra.mode == RunMode.MULTIRUN and cfg.hydra.sweeper.params, "a preset runs its whole sweep"
    tiny = _compose([f"paper={preset}", "debug=tiny"])
    assert tiny.n_eval < cfg.n_eval


def _options(group):
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in _options(g)])
def test_every_option_instantiates(group, option, fashion_standin, imagenet_standin, annotation_standin,
                                   cifar_standin, coco_standin):
    overrides = [f"{group}={option}"]
    if group == "dataset":
        if option in ("fashion_mnist", "mnist"):
            overrides += [f"dataset.root={fashion_standin}", "dataset.val_size=500"]
        if option == "mnist":
            overrides += ["dataset.download=false"]
        if option == "imagenet":
            overrides += [f"dataset.root={imagenet_standin}"]
        if option == "mohseni_annotations":
            overrides += [f"dataset.root={annotation_standin}"]
        if option == "cifar10":
            overrides += [f"dataset.root={cifar_standin}", "dataset.val_size=20"]
        if option == "coco_two_objects":
            overrides += [f"dataset.root={coco_standin}", "dataset.min_area=0"]
        if option in ("cfm32", "two_objects"):
            overrides += [f"dataset.root={fashion_standin}", "dataset.train_size=100", "dataset.val_size=10",
                          "dataset.test_size=10", "dataset.cache_dir=null"]
    if group == "model" and option in ("vgg16", "vgg19", "resnet50", "resnet101"):
        overrides += ["model.weights=null"]  # pretrained weights cannot be downloaded here
    cfg = _compose(overrides)
    obj = instantiate(cfg[group])
    name = getattr(obj, "name", None)
    assert name == option, f"{group}/{option}.yaml must carry name: {option}"


def _cli(*args, cwd=ROOT, timeout=120):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "run.py", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.parametrize("args,first", [
    (["attack=no_such_attack"], "robex error: Could not find 'attack/no_such_attack'"),
    (["-m", "attack=manip_untargeted,no_such_attack"], "robex error: Could not find 'attack/no_such_attack'"),
    (["eps=abc"], "robex error: eps=abc: there is no setting 'eps'; use threat.budget"),
    (["threat.nrom=l2"], "robex error: Could not override 'threat.nrom'."),
    (["attack=expl_delta_stadv", "+perturbation@attack.perturbation.parts.blur=blur"],
     "robex error: Could not find 'perturbation/blur'"),
])
def test_unknown_option_leads_with_one_robex_line_and_keeps_the_choices(args, first, tmp_path):
    r = _cli(*args, f"hydra.run.dir={tmp_path}/run", f"hydra.sweep.dir={tmp_path}/sweep",
             f"paths.cache_dir={tmp_path}/cache")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.splitlines()
    assert lines[0].startswith(first), lines[0]
    if "Could not find" in first:  # Hydra's list of the available options follows
        group = first.split("'")[1].split("/")[0]
        assert f"Available options in '{group}':" in r.stderr
        assert ("manip_untargeted" if group == "attack" else "recolor") in r.stderr
    assert not (tmp_path / "sweep").exists() and not (tmp_path / "cache").exists()


def test_a_model_that_cannot_take_the_images_is_one_line_before_training(tmp_path, fashion_standin):
    r = _cli("model=vgg16", "model.weights=null", f"dataset.root={fashion_standin}", "dataset.val_size=500",
             f"hydra.run.dir={tmp_path}", f"paths.cache_dir={tmp_path}/cache")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith(
        "robex error: model=vgg16 cannot take dataset=fashion_mnist images of shape (1, 28, 28)"), lines
    assert not (tmp_path / "cache" / "models").exists()


@pytest.mark.parametrize("damage", ["garbage", "truncated_gz", "short_body"])
def test_a_damaged_idx_file_is_one_line_naming_the_file(damage, tmp_path, fashion_standin):
    import gzip
    import shutil

    root = tmp_path / "fmnist"
    shutil.copytree(fashion_standin, root)
    victim = sorted(root.glob("train-images*"))[0]
    raw = gzip.decompress(victim.read_bytes()) if victim.suffix == ".gz" else victim.read_bytes()
    if damage == "garbage":
        victim.write_bytes(b"this is not an IDX file at all" * 10)
    elif damage == "truncated_gz":
        victim.unlink()
        victim = victim.with_suffix(".gz") if victim.suffix != ".gz" else victim
        victim.write_bytes(gzip.compress(raw)[:-4000])
    else:
        victim.write_bytes(gzip.compress(raw[:-100]) if victim.suffix == ".gz" else raw[:-100])
    r = _cli(f"dataset.root={root}", "dataset.val_size=500", f"hydra.run.dir={tmp_path}/run",
             f"paths.cache_dir={tmp_path}/cache")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"robex error: {victim} "), lines


@pytest.mark.parametrize("budget", ["-0.1", "1.5", "nan"])
def test_budget_out_of_range_is_one_line_before_any_work(budget, tmp_path):
    r = _cli("attack=manip_untargeted", f"threat.budget={budget}", f"hydra.run.dir={tmp_path}",
             f"paths.cache_dir={tmp_path}/cache")
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert "robex error: threat.budget=" in r.stderr and "out of range" in r.stderr
    assert not (tmp_path / "cache").exists()  # failed before training anything


def test_missing_dataset_names_the_fix(tmp_path):
    r = _cli("dataset.system_dir=/nonexistent/system", f"hydra.run.dir={tmp_path}",
             f"paths.cache_dir={tmp_path}/cache")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    line = [l for l in r.stderr.splitlines() if l.startswith("robex error")][0]
    assert "FashionMNIST not found" in line and "make data" in line and "dataset.root" in line
    # a root the user gave is never silently replaced by the system copy
    r = _cli("dataset.root=/nonexistent/fmnist", f"hydra.run.dir={tmp_path}", f"paths.cache_dir={tmp_path}/cache")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "robex error: dataset.root=/nonexistent/fmnist does not exist" in r.stderr


def test_mnist_without_root_says_use_the_subset():
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="config", overrides=["dataset=mnist"])
    with pytest.raises(Exception) as info:
        instantiate(cfg.dataset)
    assert "mnist5k" in str(user_error(info.value))


DEBUG_GROUPS = ["dataset", "explainer", "attack", "defense", "task"]


def _sweep_jobs(preset, joint=("explainer", "attack", "defense", "model", "dataset")):
    """Override lists that cover a preset's sweep (simple comma lists): every combination of the
    option axes (``joint``: which options a job builds), and each value of the other axes (budgets,
    iterations) once, beside the first combination; every value of every axis appears."""
    import itertools

    params = _compose([f"paper={preset}"]).hydra.sweeper.params
    axes = {k: [f"{k}={v}" for v in str(vals).split(",")] for k, vals in params.items()}
    options = [k for k in axes if k.split("@")[0] in joint]
    others = [k for k in axes if k not in options]
    jobs = [list(combo) + [axes[k][0] for k in others] for combo in itertools.product(*(axes[k] for k in options))]
    for k in others:
        for value in axes[k][1:]:
            jobs.append(jobs[0][:len(options)] + [value if o == k else axes[o][0] for o in others])
    return jobs


@pytest.mark.parametrize("group", DEBUG_GROUPS)
def test_debug_tiny_names_every_option_and_only_existing_keys(group):
    """debug=tiny covers every option explicitly, and each key it sets exists in that option (so the
    strict apply_debug cannot fail on any single option, and a new option must be added to it)."""
    from omegaconf import OmegaConf

    from robex.pipeline import apply_debug

    tiny = OmegaConf.load(CONF / "debug" / "tiny.yaml").debug.options
    assert sorted(tiny[group].keys()) == _options(group)
    for option in _options(group):
        cfg = _compose([f"{group}={option}", "debug=tiny"])
        OmegaConf.set_struct(cfg, False)
        apply_debug(cfg)
        for key, value in (tiny[group][option] or {}).items():
            assert OmegaConf.select(cfg, f"{group}.{key}") == value


@pytest.mark.parametrize("preset", PRESETS)
def test_debug_tiny_shrinks_every_job_of_every_preset(preset):
    from omegaconf import OmegaConf

    from robex.pipeline import apply_debug

    for job in _sweep_jobs(preset):
        cfg = _compose([f"paper={preset}", *job, "debug=tiny"])
        full = cfg.copy()  # debug=tiny sets none of the keys below itself: apply_debug does
        OmegaConf.set_struct(cfg, False)
        apply_debug(cfg)
        for key in ("attack.steps", "attack.iterations", "defense.sg_samples", "task.n_pairs",
                    "explainer.n_samples", "task.reference.n_samples", "explainer.iterations", "explainer.n_noise"):
            big, small = OmegaConf.select(full, key), OmegaConf.select(cfg, key)
            if isinstance(big, int) and big > 4:
                assert small <= 4, (job, key, small)


def test_debug_mode_fails_on_an_option_it_does_not_name_or_a_key_that_matches_nothing():
    from omegaconf import OmegaConf

    from robex.errors import RobexError
    from robex.pipeline import apply_debug

    cfg = _compose(["attack=manip_untargeted", "debug=tiny"])
    OmegaConf.set_struct(cfg, False)
    cfg.attack.name = "brand_new_attack"
    with pytest.raises(RobexError, match="no entry for attack option 'brand_new_attack'"):
        apply_debug(cfg)
    cfg = _compose(["attack=manip_untargeted", "debug=tiny"])
    OmegaConf.set_struct(cfg, False)
    cfg.debug.options.attack.manip_untargeted = {"n_steps": 4}
    with pytest.raises(RobexError, match="attack.n_steps matches nothing"):
        apply_debug(cfg)


@pytest.mark.parametrize("override,message", [
    ("seed=abc", "robex error: seed='abc' is not allowed: it must be an integer >= 0"),
    ("n_eval=abc", "robex error: n_eval='abc' is not allowed"),
    ("n_eval=0", "robex error: n_eval=0 is not allowed: it must be an integer >= 1"),
    ("train.epochs=-1", "robex error: train.epochs=-1 is not allowed"),
    ("train.batch_size=0", "robex error: train.batch_size=0 is not allowed"),
    ("accuracy_limit=-1", "robex error: accuracy_limit=-1 is not allowed"),
    ("threat.budget=abc", "robex error: threat.budget='abc' is not a number"),
    ("device=cuda", "robex error: device=cuda but this machine has no CUDA device"),
    ("device=tpu9", "robex error: device='tpu9' is not a device"),
    ("+attack.n_steps=4", "robex error: attack=none: "),
    ("train.optimiser.name=adagrad", "robex error: optimiser.name='adagrad'"),
    ("explainer=relex explainer.iterations=0", "robex error: relex iterations=0 must be >= 1"),
    ("explainer=relex explainer.n_noise=0", "robex error: relex n_noise=0 must be >= 1"),
    ("explainer=relex explainer.fill=blur", "robex error: relex fill='blur'"),
    ("explainer=mask explainer.iterations=0", "robex error: mask iterations=0 must be >= 1"),
    ("threat.units=normalised threat.budget=-2", "robex error: threat.budget=-2 is out of range"),
    ("model=resnet50 model.weights_path=/nonexistent/robust.pt", "robex error: model.weights_path=/nonexistent/robust.pt does not exist"),
    ("attack=expl_delta attack.perturbation.budget=-0.1", "robex error: delta budget=-0.1 is out of range"),
    ("attack=expl_delta_stadv_recolor attack.perturbation.parts.recolor.budget=-1",
     "robex error: recolor budget=-1 and smoothness=0.05 must be >= 0"),
    ("attack=expl_delta attack.noise_samples=0", "robex error: attack expl_delta: noise_samples=0 must be >= 1"),
    ("defense=atex_authors defense.inner_steps=0", "robex error: atex_authors: iterations >= 0, epochs, inner_steps"),
    ("defense=atex_authors defense.delta=2", "robex error: atex_authors delta=2"),
])
def test_bad_values_are_one_line_before_any_work(override, message, tmp_path):
    """The job (robex.pipeline.run, in this process: a CLI run per case cost 4 s of imports) stops
    with the user error that run.py prints as its one line; nothing was trained or cached.
    test_a_bad_value_on_the_command_line_is_one_stderr_line runs the CLI itself on three of them."""
    from omegaconf import OmegaConf

    from robex.pipeline import run

    if override.startswith("device=cuda") and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    cfg = _compose([*override.split(" "), f"paths.cache_dir={tmp_path}/cache", f"paths.output_dir={tmp_path}/run"])
    OmegaConf.set_struct(cfg, False)
    cfg.hydra.runtime.output_dir = str(tmp_path / "run")
    with pytest.raises(Exception) as info:
        run(cfg)
    err = user_error(info.value)
    assert err is not None, info.value  # a user error (one line), not a crash
    line = f"robex error: {err}"
    assert message in line and "\n" not in line
    assert not (tmp_path / "cache" / "models").exists()  # failed before training anything


@pytest.mark.parametrize("override,message", [
    ("seed=abc", "robex error: seed='abc' is not allowed: it must be an integer >= 0"),
    ("device=cuda", "robex error: device=cuda but this machine has no CUDA device"),
    ("+attack.n_steps=4", "robex error: attack=none: "),
])
def test_a_bad_value_on_the_command_line_is_one_stderr_line(override, message, tmp_path):
    if override.startswith("device=cuda") and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    r = _cli(override, f"hydra.run.dir={tmp_path}", f"paths.cache_dir={tmp_path}/cache")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-1500:]
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert lines == [l for l in lines if l.startswith("robex error")] and len(lines) == 1, r.stderr
    assert message in lines[0]
    assert not (tmp_path / "cache" / "models").exists()


def test_a_cache_folder_that_cannot_be_written_is_one_line_before_training(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")
    r = _cli(f"hydra.run.dir={tmp_path}/run", f"paths.cache_dir={blocker}/cache")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert f"robex error: paths.cache_dir={blocker}/cache cannot be written" in r.stderr


def test_the_readme_imagenet_example_without_data_names_the_root_not_the_weights(tmp_path):
    r = _cli("paper=aggmean_tab1", "dataset=imagenet", f"dataset.root={tmp_path}/no_val_here", "model=vgg16",
             "train.epochs=0", "debug=tiny", f"hydra.sweep.dir={tmp_path}/sweep",
             f"paths.cache_dir={tmp_path}/cache", f"paths.results_dir={tmp_path}/results", timeout=300)
    assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr[-2000:]
    errors = [l for l in r.stderr.splitlines() if l.startswith("robex error")]
    assert errors and f"dataset.root={tmp_path}/no_val_here" in errors[0] and "weights" not in errors[0]


@pytest.mark.parametrize("args,key", [(["hydra.run.dir={blocker}/run"], "hydra.run.dir"),
                                      (["-m", "paper=atex_tab1", "hydra.sweep.dir={blocker}/sweep"], "hydra.sweep.dir"),
                                      (["paper=atex_tab1", "paths.outputs={blocker}/outputs"], "hydra.sweep.dir")])
def test_an_output_folder_that_cannot_be_written_is_one_line(args, key, tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")
    r = _cli(*[a.format(blocker=blocker) for a in args], f"paths.cache_dir={tmp_path}/cache")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"robex error: {key}={blocker}/"), lines
    assert f"({blocker} is not a folder)" in lines[0]
