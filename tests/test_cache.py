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
