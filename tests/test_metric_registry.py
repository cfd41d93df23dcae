"""Metrics with metadata: the Gini index against quantus, metadata of every metric, NaN maps never
score as perfect."""
import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from robex.metrics.base import KINDS, Metric, MetricInfo, MetricInputs
from robex.metrics.similarity import Spearman, TopKIntersection
from robex.metrics.sparseness import Gini, gini


def test_gini_matches_quantus_sparseness():
    quantus = pytest.importorskip("quantus")
    rng = np.random.default_rng(0)
    a = rng.random((5, 1, 7, 7)) * (rng.random((5, 1, 7, 7)) > 0.6)
    a[0] = 0
    a[0, 0, 3, 3] = 2.0
    ref = quantus.Sparseness(disable_warnings=True, normalise=False, abs=True, return_aggregate=False)(
        model=None, x_batch=rng.random((5, 1, 7, 7)), y_batch=np.zeros(5, int), a_batch=a, device="cpu")
    got = gini(torch.tensor(a[:, 0]))
    assert np.allclose(got.numpy(), np.array(ref, dtype=float), atol=1e-5)
    assert abs(got[0].item() - 48 / 49) < 1e-6  # one non-zero entry: (n - 1) / n


def test_gini_invariants():
    h = torch.rand(4, 6, 6)
    assert torch.allclose(gini(h), gini(3.0 * h))  # scale-free
    assert torch.allclose(gini(torch.ones(2, 6, 6)), torch.zeros(2), atol=1e-7)  # uniform map
    assert torch.isnan(gini(torch.zeros(1, 6, 6))).all()


def test_metrics_are_built_from_config_with_metadata():
    cfg = OmegaConf.create({"a": {"_target_": "robex.metrics.similarity.TopKIntersection", "k": 7},
                            "b": {"_target_": "robex.metrics.sparseness.Gini"}})
    built = instantiate(cfg)
    assert built["a"].params() == {"k": 7} and built["a"].info.kind == "pair"
    assert built["b"].info.kind == "map" and built["b"].info.higher_is_better
    for m in (Spearman(), TopKIntersection(3), Gini()):
        lo, hi = m.info.range
        assert isinstance(m, Metric) and lo < hi and m.info.citation


def test_non_finite_maps_give_nan_never_a_perfect_score():
    h = torch.rand(3, 5, 5)
    bad = h.clone()
    bad[1, 0, 0] = float("nan")
    for m in (Spearman(), TopKIntersection(4)):
        v = m(MetricInputs(h_clean=bad, h_adv=bad))
        assert torch.isnan(v[1]) and torch.isfinite(v[[0, 2]]).all() and (v[[0, 2]] == 1).all()
    assert torch.isnan(Gini()(MetricInputs(h_clean=bad))[1])


def test_every_metric_config_builds_a_metric_with_its_metadata():
    from pathlib import Path

    conf = Path(__file__).resolve().parents[1] / "conf" / "metric"
    names = sorted(p.stem for p in conf.glob("*.yaml"))
    assert {"gini", "infidelity", "spearman", "top_k_in_mask", "topk"} <= set(names)
    for name in names:
        m = instantiate(OmegaConf.load(conf / f"{name}.yaml"))
        assert isinstance(m, Metric), name
        assert m.info.kind in KINDS and m.info.range[0] < m.info.range[1], name
        assert isinstance(m.info.higher_is_better, bool) and m.info.citation, name


def test_metric_metadata_refuses_an_unknown_kind_and_an_empty_range():
    with pytest.raises(ValueError, match="choose one of pair, map, model, target, image"):
        MetricInfo(kind="pairs", higher_is_better=True, range=(0.0, 1.0), citation="x")
    with pytest.raises(ValueError, match="lower end"):
        MetricInfo(kind="pair", higher_is_better=True, range=(1.0, 1.0), citation="x")
