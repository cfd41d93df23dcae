"""Each task, run in-process as the first job of a preset that uses it (debug=tiny, FashionMNIST
stand-in): the rows carry the metrics the task documents, with values inside their ranges and
counts equal to what was evaluated. (The manipulation task is covered by tests/test_end_to_end.py;
the annotation task by tests/test_real_paths.py.)"""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from robex.pipeline import run

CONF = Path(__file__).resolve().parents[1] / "conf"


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("task_cache")


def _job(preset, overrides, tmp, data_root, cache_dir):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"paper={preset}", *overrides, "debug=tiny",
                                                      f"dataset.root={data_root}",
                                                      f"paths.cache_dir={cache_dir}",
                                                      f"paths.output_dir={tmp}", "run_name=test",
                                                      f"paths.results_dir={tmp}/results"])
    OmegaConf.set_struct(cfg, False)
    cfg.dataset.system_dir = None
    rows = run(cfg)
    arrays = dict(np.load(tmp / "arrays.npz")) if (tmp / "arrays.npz").exists() else {}
    assert rows.equals(rows) and (tmp / "metrics.csv").exists()
    return pd.read_csv(tmp / "metrics.csv"), arrays


def _values(rows, metric, **where):
    sel = rows[rows.metric == metric]
    for k, v in where.items():
        sel = sel[sel[k] == v]
    assert len(sel), (metric, where)
    return sel


def test_smoothness_task(tmp_path, fashion_standin, cache_dir):
    rows, _ = _job("atex_fig2", ["dataset=fashion_mnist", "defense.iterations=5"], tmp_path,
                   fashion_standin, cache_dir)
    ssim = _values(rows, "ssim_to_smoothgrad", explainer="smoothgrad100")
    assert list(ssim.step) == [5] and (ssim.step_axis == "defense_stage").all() and (ssim.n == 16).all()
    assert ssim.value.between(-1, 1).all() and (ssim.se >= 0).all()
    assert _values(rows, "accuracy").value.between(0, 1).all()
    # the SSIM row keeps its per-image values (k = 0 and k > 0 pair image by image in the claims)
    with np.load(tmp_path / "samples.npz") as f:
        kept = {int(k[1:]): f[k] for k in f.files}
    assert list(kept) == [int(ssim.index[0])]
    assert kept[int(ssim.index[0])].astype(float).mean() == pytest.approx(ssim.value.iloc[0], abs=1e-6)


def test_a_smoothness_job_gives_the_same_numbers_whether_its_model_was_trained_or_loaded(tmp_path, fashion_standin):
    """The first job trains the baseline and ATEX in its own process (drawing from torch's global
    stream), the second loads them from the cache: the SmoothGrad reference has its own seeded
    generator, so the SSIM rows agree exactly."""
    import shutil

    cache = tmp_path / "cache"
    trained, _ = _job("atex_fig2", ["dataset=fashion_mnist", "defense.iterations=1"], tmp_path / "a", fashion_standin, cache)
    shutil.rmtree(cache / "jobs")  # keep the models, recompute the job
    loaded, _ = _job("atex_fig2", ["dataset=fashion_mnist", "defense.iterations=1"], tmp_path / "b", fashion_standin, cache)
    pd.testing.assert_series_equal(_values(trained, "ssim_to_smoothgrad").value.reset_index(drop=True),
                                   _values(loaded, "ssim_to_smoothgrad").value.reset_index(drop=True), check_exact=True)


def test_gallery_task(tmp_path, fashion_standin, cache_dir):
    rows, arrays = _job("atex_fig3", ["dataset=fashion_mnist"], tmp_path, fashion_standin, cache_dir)
    n_cases = int(_values(rows, "n_cases").value.iloc[0])
    assert n_cases == 4
    maps = [v for k, v in arrays.items() if v.ndim == 3]
    assert maps and all(len(m) == n_cases and np.isfinite(m).all() for m in maps)


def test_adversarial_training_efficacy_task(tmp_path, fashion_standin, cache_dir):
    rows, _ = _job("atex_fig4", ["dataset=fashion_mnist", "defense.iterations=1"], tmp_path,
                   fashion_standin, cache_dir)
    robust = _values(rows, "robust_accuracy")
    assert (robust.attack == "fgsm").all() and robust.value.between(0, 1).all()
    # the evaluation's FGSM budget and ATEX's own are recorded apart (the preset: 0.1 and 0.08)
    assert (robust.budget == 0.1).all() and (robust.defense_budget == 0.08).all()
    clean = _values(rows, "accuracy")
    assert (clean.attack == "none").all() and (clean.threat == "none").all() and clean.budget.isna().all()
    assert (robust.n == 500).all()
    assert _values(rows, "accuracy_before").value.between(0, 1).all()


@pytest.mark.parametrize("preset,expected", [
    ("aggmean_tab1", {"mse_delta", "pcc_delta", "topk_delta", "image_mse", "label_kept", "linf"}),
    ("aggmean_tab4", {"mass_before", "mass_after", "mass_kept", "image_mse", "label_kept", "linf"})])
def test_map_manipulation_task(preset, expected, tmp_path, fashion_standin, cache_dir):
    rows, arrays = _job(preset, ["explainer=gradient"], tmp_path, fashion_standin, cache_dir)
    attacked = rows[rows.explainer == "gradient"]
    assert set(attacked.metric) == expected
    assert (attacked.n == 4).all() and (rows.attacked_explainer == "gradient").all()  # debug=tiny: 4 pairs
    attack = {"aggmean_tab1": "map_targeted", "aggmean_tab4": "map_blank_square"}[preset]
    assert (rows.attack == attack).all() and (rows.threat == "unconstrained").all()
    assert rows.budget.isna().all()  # no ball: the map attacks only clamp to the valid range
    assert set(rows.explainer) == {"gradient", "guided_backprop", "lrp", "integrated_gradients", "agg_mean"}
    assert 0 <= _values(attacked, "label_kept").value.iloc[0] <= 1
    assert _values(attacked, "linf").value.iloc[0] > 0
    if "mass_kept" in expected:  # the per-sample ratio, recomputed from the arrays
        ratio = arrays["gradient__mass_after"] / arrays["gradient__mass_before"]
        np.testing.assert_allclose(_values(attacked, "mass_kept").value.iloc[0], ratio.mean(), rtol=1e-5)
    # every row keeps its per-pair values (the claims pair explainers attacked on the same pairs)
    with np.load(tmp_path / "samples.npz") as f:
        kept = {int(k[1:]): f[k] for k in f.files}
    assert sorted(kept) == list(range(len(rows)))
    for i, v in kept.items():
        assert np.isfinite(v).sum() == rows.n[i] and np.nanmean(v.astype(float)) == pytest.approx(rows.value[i], rel=1e-5, abs=1e-7)


def test_a_seed_makes_a_job_repeatable_and_another_seed_changes_it(tmp_path, fashion_standin):
    """No cache: the same seed gives identical rows (training, attack, metrics), another seed does not."""
    from robex.pipeline import _DATA_MEMO, _MODEL_MEMO

    def once(seed, sub):
        _MODEL_MEMO.clear()
        _DATA_MEMO.clear()
        out = tmp_path / sub
        rows, _ = _job("atex_tab1", ["threat.budget=0.04", "defense=none", "attack=manip_untargeted", f"seed={seed}",
                                     "use_cache=false"], out, fashion_standin, tmp_path / f"cache_{sub}")
        return rows.drop(columns=["run_name"])

    a, b, c = once(0, "a"), once(0, "b"), once(1, "c")
    pd.testing.assert_frame_equal(a, b)
    spear = lambda r: r.loc[r.metric == "spearman", "value"].item()  # noqa: E731
    assert spear(a) != spear(c)


def test_one_pivot_over_both_papers_metrics_files(tmp_path, fashion_standin, cache_dir):
    """The defense x attack x explainer matrix across papers is one pivot over their metrics.csv
    files: same columns, no paper-specific parsing, every (configuration, metric) cell unique and
    equal to its row's value."""
    from robex.report.schema import KEYS, read_metrics

    _job("atex_tab1", ["threat.budget=0.04", "defense=atex", "attack=manip_untargeted"],
         tmp_path / "atex", fashion_standin, cache_dir)
    _job("aggmean_tab1", ["explainer=lrp"], tmp_path / "aggmean", fashion_standin, cache_dir)
    rows = read_metrics([tmp_path / "atex" / "metrics.csv", tmp_path / "aggmean" / "metrics.csv"])
    assert set(rows.paper) == {"atex", "aggmean"}
    assert not rows.duplicated(subset=KEYS).any()  # the key columns identify every value
    matrix = rows.pivot_table(index=["paper", "defense", "defense_budget"],
                              columns=["attack", "attacked_explainer", "explainer", "metric"],
                              values="value", aggfunc="first", dropna=False)
    cell = matrix.loc[("aggmean", "none", np.nan), ("map_targeted", "lrp", "agg_mean", "pcc_delta")]
    want = rows[(rows.explainer == "agg_mean") & (rows.attacked_explainer == "lrp") & (rows.metric == "pcc_delta")]
    assert len(want) == 1 and cell == want.value.item()
    cell = matrix.loc[("atex", "atex", 0.04), ("manip_untargeted", "gradient", "gradient", "spearman")]
    want = rows[(rows.paper == "atex") & (rows.metric == "spearman")]
    assert len(want) == 1 and cell == want.value.item() and want.budget.item() == 0.04
    assert (want.metric_params.fillna("") == "").all() and (rows[rows.metric == "topk"].metric_params == "k=50").all()


def test_nan_samples_are_counted_in_their_own_row_never_dropped_silently():
    """5 of 16 maps non-finite (observed with gradcam on atex_cnn): the mean is over the 11 others and
    a '<metric>__nan' row says 5 of 16 were left out."""
    import torch

    from robex.tasks.common import summary_rows

    class Ctx:
        def row(self, metric, value, se=float("nan"), n=0, **columns):
            return {"metric": metric, "value": value, "se": se, "n": n}

    v = torch.arange(16, dtype=torch.float32)
    v[[1, 4, 6, 9, 15]] = float("nan")
    rows = {r["metric"]: r for r in summary_rows(Ctx(), {"spearman": v, "objective_before": v})}
    assert rows["spearman"]["n"] == 11 and rows["spearman"]["value"] == pytest.approx(
        float(v[torch.isfinite(v)].mean()))
    assert rows["spearman__nan"]["value"] == 5 and rows["spearman__nan"]["n"] == 16
    assert "objective_before__nan" not in rows  # an attack's own objective is NaN by design for some attacks
    clean = summary_rows(Ctx(), {"spearman": torch.ones(4)})
    assert [r["metric"] for r in clean] == ["spearman"]


def test_clean_maps_are_shared_by_jobs_that_differ_in_the_attack_and_equal_a_fresh_computation(tmp_path, fashion_standin):
    """An eps sweep computes the clean maps once (maps/ in the cache); the second job's rows equal
    the same job run without any cache. An unseeded stochastic explainer is never cached."""
    from robex.pipeline import _DATA_MEMO, _MODEL_MEMO

    def job(budget, sub, extra=(), cache=True):
        _MODEL_MEMO.clear()
        _DATA_MEMO.clear()
        rows, _ = _job("atex_tab1", [f"threat.budget={budget}", "defense=none", "attack=manip_untargeted",
                                     *extra, *([] if cache else ["use_cache=false"])],
                       tmp_path / sub, fashion_standin, tmp_path / ("cache" if cache else f"nocache_{sub}"))
        return rows.drop(columns=["run_name"])

    job(0.04, "a")
    maps = list((tmp_path / "cache" / "maps").glob("*.pt"))
    assert len(maps) == 1
    written = maps[0].stat().st_mtime_ns
    second = job(0.08, "b")
    assert list((tmp_path / "cache" / "maps").glob("*.pt")) == maps and maps[0].stat().st_mtime_ns == written
    pd.testing.assert_frame_equal(second, job(0.08, "c", cache=False))
    job(0.04, "d", ["explainer=smoothgrad"])  # seed: null draws from the job's stream
    assert len(list((tmp_path / "cache" / "maps").glob("*.pt"))) == 1


def test_a_transfer_attack_fools_the_named_explainer_and_the_rows_say_so(tmp_path, fashion_standin, cache_dir):
    """task.attack_explainer: the attack optimises against that explainer; the job's explainer is
    scored on the result. Attacking Gradient and scoring Gradient-x-Input gives other maps than
    attacking Gradient-x-Input itself."""
    rows_t, _ = _job("atex_tab1", ["threat.budget=0.08", "defense=none", "attack=manip_untargeted",
                                   "explainer=gradient_x_input", "+explainer@task.attack_explainer=gradient"],
                     tmp_path / "t", fashion_standin, cache_dir)
    rows_s, _ = _job("atex_tab1", ["threat.budget=0.08", "defense=none", "attack=manip_untargeted",
                                   "explainer=gradient_x_input"], tmp_path / "s", fashion_standin, cache_dir)
    assert set(rows_t.attacked_explainer) == {"gradient"} and set(rows_s.attacked_explainer) == {"gradient_x_input"}
    assert set(rows_t.explainer) == {"gradient_x_input"}
    spear = lambda r: r.loc[r.metric == "spearman", "value"].item()  # noqa: E731
    assert spear(rows_t) != spear(rows_s)


def test_a_cached_job_reused_under_another_option_name_carries_that_name(tmp_path, fashion_standin, cache_dir):
    """Option names never enter the job key, so two options equal but for their name share a job;
    the reusing job's rows must say its own name (debug=tiny makes relex and relex_100 such a pair)."""
    common = ["threat.budget=0.04", "defense=none", "attack=none", "task=retrieval"]
    first, _ = _job("atex_tab1", [*common, "explainer=relex"], tmp_path / "a", fashion_standin, cache_dir)
    again, _ = _job("atex_tab1", [*common, "explainer=relex_100"], tmp_path / "b", fashion_standin, cache_dir)
    assert set(first.explainer) == {"relex"} and set(again.explainer) == {"relex_100"}
    pd.testing.assert_series_equal(first.value, again.value)
    assert '"cached": true' in (tmp_path / "b" / "job.json").read_text()


def test_job_json_says_where_a_computed_jobs_time_went(tmp_path, fashion_standin):
    """Fresh cache: the job builds the ATEX stage itself, so job.json splits its compute time into
    training (the baseline, if this job trained it), atex, attack and task, summing to it; the same job again reuses the result
    and spent nothing on any stage."""
    import json

    overrides = ["threat.budget=0.08", "defense=atex", "attack=random"]
    _job("atex_tab1", overrides, tmp_path / "a", fashion_standin, tmp_path / "cache")
    job = json.loads((tmp_path / "a" / "job.json").read_text())
    split = job["stages_s"]
    assert set(split) == {"training", "atex", "attack", "task"} and split["atex"] > 0 and split["task"] > 0
    assert split["attack"] > 0
    assert abs(sum(split.values()) - job["compute_s"]) < 1e-6
    _job("atex_tab1", overrides, tmp_path / "b", fashion_standin, tmp_path / "cache")
    again = json.loads((tmp_path / "b" / "job.json").read_text())
    assert again["cached"] and again["stages_s"] == {}


def test_a_transfer_attack_is_computed_once_for_all_the_explainers_it_scores(tmp_path, fashion_standin, cache_dir):
    """A sweep that scores several explainers on one transfer attack (RelEx Fig. 4) attacks once: the
    second explainer's job reuses the attack (no ``attack`` stage in its job.json) and gets exactly
    the rows it gets when it computes the attack itself; another fooled explainer is another attack."""
    import json
    import shutil

    fresh_cache = tmp_path / "fresh"
    shutil.copytree(cache_dir / "models", fresh_cache / "models")  # the same trained model, no attacks

    def job(scored, fooled, folder, cache):
        rows, _ = _job("atex_tab1", ["threat.budget=0.06", "defense=none", "attack=manip_untargeted",
                                     f"explainer={scored}", f"+explainer@task.attack_explainer={fooled}"],
                       tmp_path / folder, fashion_standin, cache)
        return rows.drop(columns=["run_name"]), json.loads((tmp_path / folder / "job.json").read_text())

    _, first = job("gradient_x_input", "gradient", "a", cache_dir)
    reused_rows, reused = job("integrated_gradients", "gradient", "b", cache_dir)
    fresh_rows, fresh = job("integrated_gradients", "gradient", "c", fresh_cache)
    assert first["stages_s"]["attack"] > 0 and fresh["stages_s"]["attack"] > 0
    assert "attack" not in reused["stages_s"] and not reused["cached"]
    pd.testing.assert_frame_equal(reused_rows, fresh_rows)
    assert _values(reused_rows, "linf").value.iloc[0] > 0
    _, other = job("integrated_gradients", "gradient_x_input", "d", cache_dir)
    assert other["stages_s"]["attack"] > 0


def test_atex_authors_runs_as_a_defense_of_the_atex_table(tmp_path, fashion_standin, cache_dir):
    """defense=atex_authors is a drop-in for defense=atex in the ATEX presets: its rows name it, its
    budget is the threat's, and the fine-tuned model differs from the baseline."""
    common = ["threat.budget=0.08", "attack=manip_untargeted_paper"]
    rows, _ = _job("atex_tab1", [*common, "defense=atex_authors"], tmp_path / "a", fashion_standin, cache_dir)
    base, _ = _job("atex_tab1", [*common, "defense=none"], tmp_path / "b", fashion_standin, cache_dir)
    assert set(rows.defense) == {"atex_authors"} and set(rows.defense_budget.dropna()) == {0.08}
    assert _values(rows, "accuracy").value.between(0, 1).all()
    spear = lambda r: r.loc[r.metric == "spearman", "value"].item()  # noqa: E731
    assert spear(rows) != spear(base)


def test_targeted_paper_attack_scores_the_normalised_region_mass(tmp_path, fashion_standin, cache_dir):
    """attack=manip_targeted_paper (the authors' loop) raises the region's share of the L1-normalised
    map, as manip_targeted does: both start from the same objective value, a fraction of the map's
    mass (in [0, 1]); on the unscaled |gradient| the value is not bounded by 1 and scaling the whole
    map up raises it, which barely moves the map's ranking (conf/attack/manip_targeted_paper.yaml)."""
    common = ["threat.budget=0.08", "defense=none"]
    paper, _ = _job("atex_tab2", [*common, "attack=manip_targeted_paper"], tmp_path / "a", fashion_standin, cache_dir)
    strong, _ = _job("atex_tab2", [*common, "attack=manip_targeted"], tmp_path / "b", fashion_standin, cache_dir)
    before = _values(paper, "objective_before").value.item()
    assert 0 < before < 1
    assert before == pytest.approx(_values(strong, "objective_before").value.item(), rel=1e-6)
    assert _values(paper, "objective_after").value.item() > before  # the attack raised the share
