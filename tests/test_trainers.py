"""The one training loop and defenses as trainers: optimiser / schedule from config with clear
errors, a diverged or NaN model is an error (never cached, never evaluated), a defense may start
from scratch, and a defense's structural transform survives reloading its cached stages."""
import math

import pytest
import torch
from omegaconf import OmegaConf

from robex.cache import Cache
from robex.errors import RobexError
from robex.pipeline import _DEFENSE_MEMO, _MODEL_MEMO, Context
from robex.trainers.fit import fit
from robex.trainers.losses import CrossEntropy
from robex.trainers.optim import OptimiserSpec, ScheduleSpec, optimiser_spec


def _cfg(defense=None, lr=1e-3):
    return OmegaConf.create({
        "seed": 0, "progress": False,
        "dataset": {"_target_": "robex.data.mnist_like.load_digits", "name": "digits"},
        "model": {"_target_": "robex.models.atex_cnn.atex_cnn", "name": "cnn", "image_size": 8,
                  "channels": 4, "hidden": 8, "beta": 10.0},
        "train": {"epochs": 1, "batch_size": 64, "optimiser": {"lr": lr}, "limit": 200},
        "defense": defense or {"_target_": "robex.defenses.none.NoDefense", "name": "none"}})


@pytest.fixture(autouse=True)
def _fresh_memos():
    _MODEL_MEMO.clear(), _DEFENSE_MEMO.clear()
    yield
    _MODEL_MEMO.clear(), _DEFENSE_MEMO.clear()


@pytest.mark.parametrize("node,match", [({"name": "adagrad"}, "optimiser.name"), ({"lr": -1}, "lr > 0"),
                                        ({"lr": "abc"}, "must be numbers"), ({"momentum": 0.9}, "SGD setting")])
def test_bad_optimiser_settings_are_clear_errors(node, match):
    with pytest.raises(RobexError, match=match):
        optimiser_spec(node)


def test_the_schedule_steps_the_learning_rate_per_epoch(digits):
    opt = OptimiserSpec(name="sgd", lr=0.1, momentum=0.5).build([torch.nn.Parameter(torch.zeros(1))])
    sched = ScheduleSpec(name="multistep", milestones=(1, 2), gamma=0.5).build(opt, 3)
    lrs = []
    for _ in range(3):
        lrs.append(opt.param_groups[0]["lr"])
        sched.step()
    assert lrs == pytest.approx([0.1, 0.05, 0.025])

    def trained(epochs, schedule):  # fit uses it: lr 0 after epoch 1 leaves the weights alone
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
        fit(model, CrossEntropy(), digits.train_x[:128], digits.train_y[:128], epochs=epochs, batch_size=32,
            optimiser=OptimiserSpec(name="sgd", lr=0.1), schedule=schedule,
            generator=torch.Generator().manual_seed(0), show_progress=False)
        return model[1].weight

    frozen = ScheduleSpec(name="multistep", milestones=(1,), gamma=0.0)
    torch.testing.assert_close(trained(3, frozen), trained(1, None))
    assert not torch.equal(trained(3, None), trained(1, None))


def test_a_diverged_run_is_an_error_not_a_model(digits):
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    with pytest.raises(RobexError, match="training diverged.*non-finite"):
        fit(model, CrossEntropy(), digits.train_x[:128] * float("inf"), digits.train_y[:128], epochs=1,
            batch_size=64, optimiser=OptimiserSpec(lr=1.0), generator=torch.Generator().manual_seed(0),
            show_progress=False)


def test_a_cached_checkpoint_with_a_nan_weight_is_refused(tmp_path):
    """A checkpoint whose weights hold a NaN (and whose sha256 sidecar matches) must not load: a NaN
    model gives NaN maps that compare as 'perfectly robust'."""
    cache = Cache(tmp_path)
    ctx = Context(_cfg(), torch.device("cpu"), cache)
    model = ctx.trained_model()
    key = cache.key(ctx.train_spec())
    state = {k: v.clone() for k, v in model.state_dict().items()}
    name = next(k for k, v in state.items() if v.is_floating_point())
    state[name].view(-1)[0] = math.nan
    cache.save_state("models", key, {"state_dict": state, "spec": "poisoned"})
    _MODEL_MEMO.clear()
    with pytest.raises(RobexError, match=f"cache entry models/{key}.*{name}.*non-finite"):
        Context(_cfg(), torch.device("cpu"), cache).trained_model()


class Halve:
    """A test defense: a structural transform (a final layer halving the logits) and one training
    stage that changes the weights; starts from scratch when ``start='init'``."""

    stages = 1
    budget = float("nan")

    def __init__(self, name="halve", start="trained"):
        self.name, self.start = name, start

    def transform(self, model):
        if isinstance(model, torch.nn.Sequential) and getattr(model, "halved", False):
            return model
        out = torch.nn.Sequential(model, _Scale(0.5))
        out.halved = True
        return out

    def apply_stage(self, stage, teacher, model, data):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.01)
        return {}


class _Scale(torch.nn.Module):
    def __init__(self, factor):
        super().__init__()
        self.factor = factor

    def forward(self, x):
        return x * self.factor


def test_a_structural_transform_survives_the_cached_reload_and_start_init_trains_from_scratch(tmp_path):
    cache = Cache(tmp_path)
    node = {"_target_": "tests.test_trainers.Halve", "name": "halve"}
    ctx = Context(_cfg(node), torch.device("cpu"), cache)
    first = ctx.defended_model()
    x = ctx.data().test_x[:8]
    _MODEL_MEMO.clear(), _DEFENSE_MEMO.clear()
    again = Context(_cfg(node), torch.device("cpu"), cache).defended_model()  # from the stage cache
    assert isinstance(again[-1], _Scale)
    torch.testing.assert_close(again(x), first(x))
    scratch_ctx = Context(_cfg(node | {"start": "init"}), torch.device("cpu"), cache)
    scratch = scratch_ctx.defended_model()
    assert cache.key(scratch_ctx.defense_spec(scratch_ctx.cfg.defense, 1)) != cache.key(ctx.defense_spec(ctx.cfg.defense, 1))
    init = scratch_ctx.initial_model()
    with torch.no_grad():  # the scratch model is the initial model plus the stage's change
        for p, q in zip(scratch[0].parameters(), init.parameters()):
            torch.testing.assert_close(p, q + 0.01)
