import torch

from robex.cache import Cache


def test_corrupted_checkpoint_is_detected_and_removed(tmp_path, caplog):
    cache = Cache(tmp_path)
    state = {"state_dict": {"w": torch.arange(1000.0)}}
    path = cache.save_state("models", "abc", state)
    loaded = cache.load_state("models", "abc")
    torch.testing.assert_close(loaded["state_dict"]["w"], state["state_dict"]["w"])
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # flip bits in the middle: still a loadable zip, wrong numbers
    path.write_bytes(bytes(data))
    assert cache.load_state("models", "abc") is None
    assert "corrupted" in caplog.text
    assert not path.exists()


def test_truncated_checkpoint_is_detected(tmp_path):
    cache = Cache(tmp_path)
    path = cache.save_state("models", "k", {"state_dict": {"w": torch.ones(10)}})
    path.write_bytes(path.read_bytes()[:50])
    assert cache.load_state("models", "k") is None


def test_json_results_round_trip_and_keys_ignore_dict_order(tmp_path):
    cache = Cache(tmp_path)
    assert cache.key({"a": 1, "b": [1, 2]}) == cache.key({"b": [1, 2], "a": 1})
    cache.save_json("jobs", "j", {"x": [1.5]})
    assert cache.load_json("jobs", "j") == {"x": [1.5]}
    assert cache.load_json("jobs", "missing") is None


def test_cache_key_changes_with_a_components_code_version(tmp_path, monkeypatch):
    """A bug fix that bumps a component's ``version`` must invalidate every key that names it,
    nested members included, and leave other keys alone."""
    from robex.explainers.gradient import Gradient
    from robex.explainers.lrp import LRP

    cache = Cache(tmp_path)
    grad = {"_target_": "robex.explainers.gradient.Gradient", "name": "gradient"}
    lrp = {"_target_": "robex.explainers.lrp.LRP", "name": "lrp"}
    agg = {"_target_": "robex.explainers.aggregate.AggMean", "members": [grad, lrp]}
    before = {k: cache.key(v) for k, v in {"grad": grad, "lrp": lrp, "agg": agg}.items()}
    monkeypatch.setattr(Gradient, "version", Gradient.version + 1, raising=False)
    after = {k: cache.key(v) for k, v in {"grad": grad, "lrp": lrp, "agg": agg}.items()}
    assert after["grad"] != before["grad"] and after["agg"] != before["agg"]
    assert after["lrp"] == before["lrp"] and LRP.version == 1


def test_model_memo_hands_out_copies_a_task_cannot_corrupt(tmp_path):
    """Changing the model one job received in place (as cascade randomisation does) must not change
    the model the next job receives from the in-process memo."""
    from omegaconf import OmegaConf

    from robex.pipeline import Context, _MODEL_MEMO

    cfg = OmegaConf.create({
        "seed": 0, "progress": False,
        "dataset": {"_target_": "robex.data.mnist_like.load_digits", "name": "digits"},
        "model": {"_target_": "robex.models.atex_cnn.atex_cnn", "name": "cnn", "image_size": 8,
                  "channels": 4, "hidden": 8, "beta": 10.0},
        "train": {"epochs": 1, "batch_size": 64, "optimiser": {"lr": 1e-3}, "limit": 200}})
    _MODEL_MEMO.clear()
    ctx = Context(cfg, torch.device("cpu"), Cache(tmp_path))
    first = ctx.trained_model()
    reference = {k: v.clone() for k, v in first.state_dict().items()}
    with torch.no_grad():
        for p in first.parameters():
            p.normal_()
    second = ctx.trained_model()
    assert second is not first and not any(p.requires_grad for p in second.parameters())
    for k, v in second.state_dict().items():
        torch.testing.assert_close(v, reference[k])
    _MODEL_MEMO.clear()


def test_atomic_writes_get_the_umasks_mode_not_0600(tmp_path):
    import os
    import stat

    from robex.utils import atomic_write_text

    mask = os.umask(0)
    os.umask(mask)
    atomic_write_text(tmp_path / "a.csv", "x")
    mode = stat.S_IMODE((tmp_path / "a.csv").stat().st_mode)
    assert mode == 0o666 & ~mask
    if mask & 0o044 == 0:  # a umask that lets others read (022 here): not the private 0600
        assert mode != 0o600


def test_progress_under_a_pipe_prints_plain_lines(capsys, monkeypatch):
    from robex.utils import LineProgress, progress

    monkeypatch.delenv("ROBEX_PROGRESS", raising=False)
    monkeypatch.setenv("ROBEX_PROGRESS_INTERVAL", "0")
    bar = progress(total=4, desc="attack", enabled=True)  # pytest's stderr is not a terminal
    assert isinstance(bar, LineProgress)
    bar.update(2)
    bar.close()
    err = capsys.readouterr().err
    assert "attack: 2/4 (50%)" in err and "left" in err and "\r" not in err
    assert not isinstance(progress(total=4, enabled=False), LineProgress)
