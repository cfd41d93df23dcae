"""`scripts/reproduce.py atex` (what `make reproduce-atex` runs) on tiny configs (slow: `make test-slow`;
the fast suite runs each task and each preset pair in tests/test_tasks.py and tests/test_preset_pairs.py): every ATEX artifact
and the claims report are produced, and a second run right after recomputes nothing."""
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from robex.errors import RobexError

ROOT = Path(__file__).resolve().parents[1]


def _assert_every_claim_evaluated(paper, results):
    """Every claim of conf/claims/<paper>.yaml has a row with an evaluated verdict (none MISSING)."""
    from robex.report.claims import load_claims

    lines = (results / f"{paper}_claims.md").read_text().splitlines()
    for claim in load_claims(paper).claims:
        row = [ln for ln in lines if ln.startswith(f"| {claim.text}")]
        assert len(row) == 1, claim.text
        assert row[0].split(" | ")[1] in ("PASS", "FAIL", "NOT DISTINGUISHABLE"), row[0]


def _reproduce(tmp, data_root, paper="atex", timeout=900, **env_extra):
    """`scripts/reproduce.py <paper> debug=tiny` into tmp (fresh cache, outputs, results); its stdout."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), ROBEX_FASHION_MNIST_ROOT=str(data_root), **env_extra)
    args = [sys.executable, "scripts/reproduce.py", paper, "debug=tiny", f"paths.cache_dir={tmp}/cache",
            f"paths.outputs={tmp}/outputs", f"paths.results_dir={tmp}/results"]
    r = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r.stdout


@pytest.mark.slow
def test_reproduce_atex_makes_every_artifact_and_resumes_from_cache(tmp_path, fashion_standin):
    first = _reproduce(tmp_path, fashion_standin)
    results = tmp_path / "results"
    for preset in ("atex_tab1", "atex_tab2", "atex_tab3", "atex_tab4"):
        assert (results / preset / "table.md").exists()
    for preset in ("atex_fig2", "atex_fig3", "atex_fig4"):
        assert (results / preset / "figure.png").stat().st_size > 1000
        assert (results / preset / "figure.csv").exists()
    _assert_every_claim_evaluated("atex", results)
    jobs = len(re.findall(r"^  \[atex_\w+\] job", first, re.M))
    assert jobs == 4 * 18 + 4 + 2 + 12  # each table: the authors' attack, the strong one and the control
    assert "all presets done in" in first
    split = re.search(r"^where the time went: (.*)$", first, re.M).group(1)
    assert "training" in split and "atex" in split and "task" in split and "rendering and overhead" in split

    second = _reproduce(tmp_path, fashion_standin)
    done = re.findall(r"^  \[atex_\w+\] job.*$", second, re.M)
    assert len(done) == jobs and all(line.endswith("(cached)") for line in done)
    assert not any(line.endswith("(cached)") for line in re.findall(r"^  \[atex_tab1\] job.*$", first, re.M))


def test_figure_csv_holds_the_plotted_values(tmp_path):
    """The row-figure renderer of atex_fig2 / atex_fig4 (robex/report/plot.py), their own layouts:
    seeds averaged, one point per facet x series x x, labels from the layout."""
    from hydra import compose, initialize_config_dir

    from robex.report.plot import render_plot

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base=None):
        fig2 = compose("config", overrides=["paper=atex_fig2"]).paper
        fig4 = compose("config", overrides=["paper=atex_fig4"]).paper
    rows = pd.DataFrame({"dataset": ["d"] * 6, "source": ["s"] * 6, "step": [0, 5, 0, 5, 5, 5],
                         "seed": [0, 0, 0, 0, 1, 1],
                         "metric": ["ssim_to_smoothgrad"] * 2 + ["accuracy"] * 2 + ["ssim_to_smoothgrad", "accuracy"],
                         "value": [0.5, 0.7, 0.9, 0.8, 0.9, 0.1], "se": [0.01, 0.02, 0, 0, 0.02, 0], "n": [10] * 6})
    plotted = render_plot(rows, fig2, tmp_path)
    csv = pd.read_csv(tmp_path / "figure.csv")
    assert csv["value"].tolist() == pytest.approx([0.5, 0.8]) == plotted["value"].tolist()  # seeds 0, 1 of k=5
    assert csv["series"].tolist() == [0, 5] and set(csv["metric"]) == {"ssim_to_smoothgrad"}
    # seed-level se of k=5: image variance 0.02^2 + the two seeds' variance 0.02 / 2
    assert csv["se"].tolist() == pytest.approx([0.01, (0.02 ** 2 + 0.02 / 2) ** 0.5]) and csv["n"].tolist() == [10, 20]
    assert (tmp_path / "figure.png").read_bytes()[:4] == b"\x89PNG"
    rows = pd.DataFrame({"dataset": ["d"] * 3 + ["e"] * 3 + ["d"] * 3, "source": ["s"] * 9,
                         "step": [2, 0, 1] * 3, "metric": ["robust_accuracy"] * 6 + ["accuracy"] * 3,
                         "attack": ["fgsm"] * 9, "budget": [0.1] * 6 + [float("nan")] * 3,
                         "value": [0.3, 0.1, 0.2, 0.6, 0.4, 0.5, 0.8, 0.8, 0.8], "se": [0] * 9, "n": [5] * 9})
    render_plot(rows, fig4, tmp_path)
    csv = pd.read_csv(tmp_path / "figure.csv")
    assert csv["facet"].tolist() == ["d"] * 3 + ["e"] * 3 and csv["x"].tolist() == [0, 1, 2] * 2
    assert csv["value"].tolist() == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]  # sorted by step, accuracy rows left out



def test_a_figure_can_plot_several_metrics_as_series_of_combined_columns(tmp_path):
    """relex_fig3's layout: two retrieval metrics x explainer variants as lines, one panel per model."""
    from hydra import compose, initialize_config_dir

    from robex.report.plot import render_plot

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base=None):
        fig3 = compose("config", overrides=["paper=relex_fig3"]).paper
    rows = pd.DataFrame([{"defense": d, "explainer": e, "budget": b, "metric": m, "source": "s", "seed": 0,
                          "value": v, "se": 0.01, "n": 100}
                         for d in ("none", "pgd_at_standin") for e in ("relex", "relex_nobatch")
                         for b in (0.1, 1.0) for m, v in (("retrieval_adv_adv", 0.9), ("retrieval_clean_adv", 0.5),
                                                          ("spearman", 0.2))])
    rows.loc[(rows.explainer == "relex_nobatch") & (rows.metric == "retrieval_adv_adv"), "value"] = 0.7
    csv = render_plot(rows, fig3, tmp_path)
    assert len(csv) == 2 * 2 * 2 * 2 and set(csv["metric"]) == {"retrieval_adv_adv", "retrieval_clean_adv"}
    nobatch = csv[csv["series"] == "relex_nobatch / retrieval_adv_adv"]
    assert nobatch["value"].tolist() == [0.7] * 4 and set(nobatch["facet"]) == {"none", "pgd_at_standin"}
    assert (csv[csv["metric"] == "retrieval_clean_adv"]["value"] == 0.5).all()


def test_panels_share_one_y_range_and_a_stand_in_is_named_on_the_image(tmp_path, monkeypatch):
    """Facets of one metric are drawn on one y range (a reader compares the panels at a glance),
    unless the preset sets sharey: false; rows from a STAND-IN name it in the title when the preset's
    title does not."""
    from hydra import compose, initialize_config_dir

    import robex.report.plot as plot

    figures = []
    monkeypatch.setattr(plot, "save_figure", lambda fig, out_dir, plotted: figures.append(fig))
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base=None):
        fig4 = compose("config", overrides=["paper=atex_fig4"]).paper
    rows = pd.DataFrame({"dataset": ["d"] * 3 + ["e"] * 3, "source": ["STAND-IN for X: toy"] * 6,
                         "step": [0, 1, 2] * 2, "metric": ["robust_accuracy"] * 6, "attack": ["fgsm"] * 6,
                         "budget": [0.1] * 6, "value": [0.1, 0.2, 0.3, 0.7, 0.8, 0.9], "se": [0] * 6, "n": [5] * 6})
    plot.render_plot(rows, fig4, tmp_path)
    left, right = figures[-1].axes[:2]
    assert left.get_ylim() == right.get_ylim() and left.get_ylim()[1] >= 0.9
    assert "STAND-IN for X: toy" in figures[-1]._suptitle.get_text()
    from omegaconf import open_dict

    with open_dict(fig4):
        fig4.plot.sharey = False
    plot.render_plot(rows.assign(source="real data"), fig4, tmp_path)
    left, right = figures[-1].axes[:2]
    assert left.get_ylim() != right.get_ylim() and "STAND-IN" not in figures[-1]._suptitle.get_text()


@pytest.mark.slow
def test_reproduce_aggmean_makes_every_artifact_and_marks_table2_unavailable(tmp_path, fashion_standin):
    stdout = _reproduce(tmp_path, fashion_standin, "aggmean",
                        ROBEX_ANNOTATIONS_ROOT=str(tmp_path / "no_annotations_here"))
    results = tmp_path / "results"
    for preset in ("aggmean_tab1", "aggmean_tab3", "aggmean_tab4"):
        table = pd.read_csv(results / preset / "table.csv")
        assert table["robex"].notna().all()
    for preset in ("aggmean_fig2", "aggmean_fig4", "aggmean_fig5", "aggmean_fig11_14"):
        assert (results / preset / "figure.png").stat().st_size > 1000
        assert len(pd.read_csv(results / preset / "figure.csv")) > 0
    tab2 = (results / "aggmean_tab2" / "table.md").read_text()
    assert "unavailable" in tab2 and "annotation benchmark" in tab2 and "0.66 / unavailable" in tab2
    assert "UNAVAILABLE" in stdout
    _assert_every_claim_evaluated("aggmean", results)


@pytest.mark.slow
def test_reproduce_smoothed_makes_every_artifact_and_evaluates_every_claim(tmp_path, fashion_standin):
    _reproduce(tmp_path, fashion_standin, "smoothed")
    results = tmp_path / "results"
    for preset in ("smoothed_tab1", "smoothed_tab2", "smoothed_tab3", "smoothed_tab4", "smoothed_tab5"):
        table = (results / preset / "table.md").read_text()
        assert "STAND-IN" in table and "n/a" not in table.split("|---")[1]
    for preset in ("smoothed_fig1", "smoothed_fig2", "smoothed_fig3", "smoothed_fig6", "smoothed_fig4", "smoothed_fig5",
                   "smoothed_fig7"):
        assert (results / preset / "figure.png").stat().st_size > 1000
        assert len(pd.read_csv(results / preset / "figure.csv")) > 0
    _assert_every_claim_evaluated("smoothed", results)


@pytest.mark.slow
def test_reproduce_relex_makes_every_artifact_and_evaluates_every_claim(tmp_path, fashion_standin):
    _reproduce(tmp_path, fashion_standin, "relex", timeout=1500)
    results = tmp_path / "results"
    table = pd.read_csv(results / "relex_tab1" / "table.csv")
    computed = table[table["status"] == "computed"]
    assert len(computed) == 7 * 8 and computed["robex"].between(0, 1).all()  # 7 methods x 2 models x 4 eps
    assert (table[table["row"].astype(str).str.startswith("RT-Sal")]["status"] == "missing").all()
    assert "STAND-IN" in (results / "relex_tab1" / "table.md").read_text()
    assert "In [0, 1] pixels, the largest change" in (results / "relex_tab1" / "table.md").read_text()
    for preset in ("relex_fig1", "relex_fig3", "relex_fig4a", "relex_fig4b", "relex_fig5", "relex_fig6"):
        assert (results / preset / "figure.png").stat().st_size > 1000
        plotted = pd.read_csv(results / preset / "figure.csv")
        values = plotted["p_adv"] if preset == "relex_fig1" else plotted["value"]  # the gallery lists panels
        assert len(plotted) > 0 and values.notna().all(), preset
    _assert_every_claim_evaluated("relex", results)


def test_relex_budget_note_gives_the_pixel_change_per_normalised_budget():
    from robex.report.relex import budget_note

    rows = pd.DataFrame([
        {"metric": "linf", "budget": 1.0, "defense": "none", "value": 0.25},
        {"metric": "linf", "budget": 1.0, "defense": "none", "value": 0.27},   # another explainer's job
        {"metric": "linf", "budget": 1.0, "defense": "pgd_at", "value": 0.20},
        {"metric": "linf", "budget": 0.1, "defense": "none", "value": 0.024},
        {"metric": "linf", "budget": 0.1, "defense": "pgd_at", "value": 0.024},
        {"metric": "relevance", "budget": 0.1, "defense": "none", "value": 0.9}])
    assert budget_note(rows) == ("In [0, 1] pixels, the largest change the attack made (mean over images) "
                                 "at each eps: 0.1 -> 0.0240, 1 -> 0.2000-0.2600. ")
    assert budget_note(rows[rows.metric == "relevance"]) == ""


def test_renderer_lookup_averages_seeds_with_a_seed_level_error_and_refuses_ambiguous_rows():
    from robex.report.tables import lookup

    rows = pd.DataFrame({"metric": ["m"] * 4, "defense": ["a"] * 4, "seed": [0, 1, 0, 1],
                         "value": [0.5, 0.7, 0.5, 0.7], "se": [0.03, 0.04, 0.03, 0.04], "n": [10] * 4})
    value, se, n = lookup(rows, "m", defense="a")  # two jobs wrote the same two seeds: counted once
    # seed-level: mean image variance (0.03^2 + 0.04^2) / 2 plus the seeds' variance 0.02 / 2
    assert value == pytest.approx(0.6) and se == pytest.approx((0.00125 + 0.01) ** 0.5) and n == 20
    rows.loc[2, "value"] = 0.9  # a second, different value for seed 0: the filter is too loose
    with pytest.raises(ValueError, match="same seed"):
        lookup(rows, "m", defense="a")


def test_renderer_lookup_keeps_an_unknown_standard_error_unknown():
    """An accuracy row has no se (NaN); the table must not print it as 0.0."""
    from robex.report.tables import lookup

    one = pd.DataFrame({"metric": ["acc"], "seed": [0], "value": [0.9], "se": [float("nan")], "n": [50]})
    assert math.isnan(lookup(one, "acc")[1])
    two = pd.DataFrame({"metric": ["m", "m"], "seed": [0, 1], "value": [0.5, 0.7],
                        "se": [0.03, float("nan")], "n": [10, 10]})
    value, se, n = lookup(two, "m")
    assert value == pytest.approx(0.6) and math.isnan(se) and n == 20


def test_relex_gallery_draws_each_methods_mask_and_lists_its_mean(tmp_path):
    """relex_fig1: one panel per method and eps, figure.csv's mask_mean is the mean of the drawn mask
    (the panel of the sample image), and a gallery without the jobs' arrays is an error."""
    import numpy as np
    from omegaconf import OmegaConf

    from robex.report.relex import render_relex_gallery

    rng = np.random.default_rng(0)
    jobs = [{"maps_adv": rng.random((2, 3, 8, 8)) ** (6 if e == "relex" else 1), "inputs_adv": rng.random((2, 3, 8, 8)),
             "p_adv": np.array([0.1, 0.2]), "p_clean": np.array([0.9, 0.8]), "target": np.array([1, 2]),
             "_budget": b, "_explainer": e} for e in ("gradient_p99", "relex") for b in (0.1, 8.0)]
    paper = OmegaConf.create({"title": "t", "sample": 1, "labels": {"gradient_p99": "SimGrad", "relex": "RelEx"}})
    csv = render_relex_gallery(None, paper, tmp_path, jobs)
    assert len(csv) == 4 and (tmp_path / "figure.png").read_bytes()[:4] == b"\x89PNG"
    for job in jobs:
        row = csv[(csv.method == job["_explainer"]) & (csv.budget == job["_budget"])]
        assert row.mask_mean.item() == pytest.approx(job["maps_adv"][1].mean())
    with pytest.raises(ValueError, match="needs the jobs' arrays"):
        render_relex_gallery(None, paper, tmp_path, [])


def test_the_aggmean_robustness_curve_attacks_every_method_in_the_same_ball_and_plots_own_attacks(tmp_path):
    """aggmean_robustness: the eps ball is the job's threat and the optimiser the same for every
    method (the paper's per-method learning rates do not apply); the figure draws each method's own
    attack only (``plot.same``), not the transfer rows beside it."""
    from hydra import compose, initialize_config_dir

    from robex.report.plot import render_plot

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base=None):
        cfgs = {e: compose("config", overrides=["paper=aggmean_robustness", f"explainer={e}", "threat.budget=0.0313725"])
                for e in ("gradient", "agg_mean")}
    for cfg in cfgs.values():
        attack = instantiate_attack(cfg)
        assert attack.threat.columns() == {"threat": "linf", "budget": 0.0313725, "units": "pixel"}
        assert attack.threat.lrs == [1e-3] and attack.iterations == 400 and cfg.task.n_pairs == 25
    rows = pd.DataFrame([{"explainer": ev, "attacked_explainer": att, "budget": b, "metric": m, "source": "s",
                          "seed": 0, "value": (0.5 if ev == att else 0.1) + b, "se": 0.01, "n": 100}
                         for att in ("gradient", "agg_mean") for ev in ("gradient", "agg_mean")
                         for b in (0.01, 0.02) for m in ("pcc_delta", "topk_delta")])
    csv = render_plot(rows, cfgs["agg_mean"].paper, tmp_path)
    assert len(csv) == 2 * 2 * 2 and csv["value"].tolist() == pytest.approx([0.51, 0.52] * 4)
    bad = cfgs["agg_mean"].paper.copy()
    bad.plot.same = ["explainer", "no_such_column"]
    with pytest.raises(RobexError, match="name two columns"):
        render_plot(rows, bad, tmp_path)


def instantiate_attack(cfg):
    from hydra.utils import instantiate

    return instantiate(cfg.attack)


def test_a_log_x_axis_puts_ticks_at_the_swept_values_and_refuses_what_it_cannot_draw(tmp_path, monkeypatch):
    from hydra import compose, initialize_config_dir
    from omegaconf import open_dict

    from robex.report import plot

    figures = []
    monkeypatch.setattr(plot, "save_figure", lambda fig, out, plotted, **kw: figures.append(fig) or plotted)
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base=None):
        fig3 = compose("config", overrides=["paper=relex_fig3"]).paper
    rows = pd.DataFrame([{"defense": "none", "explainer": "relex", "budget": b, "metric": m, "source": "s", "seed": 0,
                          "value": 0.9, "se": 0.01, "n": 100}
                         for b in (0.07, 1.0, 8.0) for m in ("retrieval_adv_adv", "retrieval_clean_adv")])
    plot.render_plot(rows, fig3, tmp_path)
    ax = figures[-1].axes[0]
    assert ax.get_xscale() == "log" and list(ax.get_xticks()) == pytest.approx([0.07, 1.0, 8.0])
    with open_dict(fig3):
        fig3.plot.xscale = "symlog"
    with pytest.raises(RobexError, match="only 'log'"):
        plot.render_plot(rows, fig3, tmp_path)
    with open_dict(fig3):
        fig3.plot.xscale = "log"
    with pytest.raises(RobexError, match="positive x values"):
        plot.render_plot(rows.assign(budget=rows["budget"] - 0.07), fig3, tmp_path)
