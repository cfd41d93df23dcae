"""The claims engine: verdicts follow the confidence intervals (holds / contradicted / not
distinguishable), the Wilson interval matches its closed form, missing standard errors of
proportions are binomial, several seeds give a seed-level interval, and every claim of the two papers' claims files
evaluates on rows shaped like robex's own."""
import math
import re

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from robex.errors import RobexError
from robex.report.claims import evaluate_claim, load_claims, paired_bootstrap, render, seed_interval, wilson
from robex.report.schema import conform


def _rows(cells):
    """cells: list of (defense, budget, metric, value, se[, n, seed])."""
    recs = []
    for c in cells:
        d, e, m, v, se = c[:5]
        n = c[5] if len(c) > 5 else 100
        seed = c[6] if len(c) > 6 else 0
        recs.append({"defense": d, "attack": "manip", "budget": e, "metric": m, "value": v, "se": se,
                     "n": n, "seed": seed, "step": 0, "dataset": "d", "explainer": "gradient"})
    return pd.DataFrame(recs)


def _write(tmp_path, rows, artifact="art", name="metrics.csv"):
    (tmp_path / artifact).mkdir(exist_ok=True)
    (conform(rows) if name == "metrics.csv" else rows).to_csv(tmp_path / artifact / name, index=False)


def _claim(**kw):
    base = {"text": "t", "artifact": "art", "test": "difference", "metric": "spearman",
            "for_each": {"budget": None}, "a": {"defense": "atex"}, "b": {"defense": "none"},
            "expect": "greater"}
    return OmegaConf.create(base | kw)


@pytest.mark.parametrize("gain,se,verdict,cell", [
    (0.05, 0.01, "PASS", "holds"),                   # CI [0.022, 0.078] above 0
    (0.01, 0.01, "NOT DISTINGUISHABLE", "not distinguishable"),  # CI contains 0
    (-0.05, 0.01, "FAIL", "contradicted")])
def test_difference_verdict_follows_the_interval(tmp_path, gain, se, verdict, cell):
    _write(tmp_path, _rows([("none", 0.1, "spearman", 0.5, se), ("atex", 0.1, "spearman", 0.5 + gain, se)]))
    r = evaluate_claim(_claim(), tmp_path)
    assert r.verdict == verdict and [c.verdict for c in r.cells] == [cell]
    half = 1.959964 * math.sqrt(2) * se
    assert r.cells[0].low == pytest.approx(gain - half) and r.cells[0].high == pytest.approx(gain + half)


@pytest.mark.parametrize("value,verdict", [(0.97, "PASS"), (0.91, "NOT DISTINGUISHABLE"), (0.8, "FAIL")])
def test_a_threshold_moves_the_boundary(tmp_path, value, verdict):
    _write(tmp_path, _rows([("none", 0.1, "retrieval", value, 0.02)]))
    claim = _claim(metric="retrieval", a={"defense": "none"}, b=None, threshold=0.9)
    assert evaluate_claim(claim, tmp_path).verdict == verdict  # CI value +- 0.039 against 0.9


def test_a_rate_of_one_gets_a_wilson_interval_not_a_zero_width_one(tmp_path):
    # 20 of 20 images retrieved: the normal interval is [1, 1] (a PASS against 0.9 with no doubt);
    # Wilson's lower bound for 20 / 20 is 0.839, so 20 images cannot show a rate >= 0.9
    _write(tmp_path, _rows([("none", 0.1, "retrieval", 1.0, 0.0, 20), ("none", 0.2, "retrieval", 1.0, 0.0, 200)]))
    normal = evaluate_claim(_claim(metric="retrieval", a={"defense": "none"}, b=None, threshold=0.9), tmp_path)
    assert normal.verdict == "PASS" and normal.cells[0].low == 1.0
    claim = _claim(metric="retrieval", a={"defense": "none"}, b=None, threshold=0.9, interval="wilson")
    r = evaluate_claim(claim, tmp_path)
    assert [c.verdict for c in r.cells] == ["not distinguishable", "holds"] and r.verdict == "NOT DISTINGUISHABLE"
    assert (r.cells[0].low, r.cells[0].high) == pytest.approx(wilson(20, 20))
    assert r.cells[0].low == pytest.approx(0.8389, abs=1e-4)
    with pytest.raises(RobexError, match="one rate against a threshold"):
        evaluate_claim(_claim(metric="retrieval", interval="wilson"), tmp_path)  # has a b
    _write(tmp_path, _rows([("none", 0.1, "retrieval", 1.7, 0.0, 20)]))
    with pytest.raises(RobexError, match="rates in"):
        evaluate_claim(claim, tmp_path)


def test_one_not_distinguishable_cell_blocks_a_pass_and_one_contradiction_fails(tmp_path):
    rows = _rows([("none", 0.1, "spearman", 0.5, 0.01), ("atex", 0.1, "spearman", 0.6, 0.01),
                  ("none", 0.2, "spearman", 0.5, 0.01), ("atex", 0.2, "spearman", 0.51, 0.01)])
    _write(tmp_path, rows)
    assert evaluate_claim(_claim(), tmp_path).verdict == "NOT DISTINGUISHABLE"
    rows.loc[3, "value"] = 0.3
    _write(tmp_path, rows)
    assert evaluate_claim(_claim(), tmp_path).verdict == "FAIL"


def test_growth_compares_the_gain_at_the_last_and_first_axis_value(tmp_path):
    rows = _rows([("none", 0.02, "m", 0.5, 0.001), ("atex", 0.02, "m", 0.51, 0.001),
                  ("none", 0.04, "m", 0.4, 0.001), ("atex", 0.04, "m", 0.39, 0.001),   # middle ignored
                  ("none", 0.08, "m", 0.3, 0.001), ("atex", 0.08, "m", 0.35, 0.001)])
    _write(tmp_path, rows)
    r = evaluate_claim(_claim(test="growth", axis="budget", metric="m", for_each=None), tmp_path)
    assert r.verdict == "PASS" and r.cells[0].estimate == pytest.approx(0.05 - 0.01)
    assert r.cells[0].high - r.cells[0].low == pytest.approx(2 * 1.959964 * math.sqrt(4) * 0.001)


def test_within_uses_binomial_standard_errors_when_a_proportion_has_none(tmp_path):
    nan = float("nan")
    rows = _rows([("none", 0.1, "accuracy", 0.90, nan, 10000), ("atex", 0.1, "accuracy", 0.895, nan, 10000)])
    _write(tmp_path, rows)
    claim = _claim(test="within", tolerance=0.02, metric="accuracy", se_if_missing="binomial")
    r = evaluate_claim(claim, tmp_path)
    se = math.sqrt(0.9 * 0.1 / 10000 + 0.895 * 0.105 / 10000)
    assert r.verdict == "PASS" and r.cells[0].low == pytest.approx(-0.005 - 1.959964 * se)
    with pytest.raises(RobexError, match="no standard error"):
        evaluate_claim(_claim(test="within", tolerance=0.02, metric="accuracy"), tmp_path)
    rows.loc[1, "value"] = 0.80
    _write(tmp_path, rows)
    assert evaluate_claim(claim, tmp_path).verdict == "FAIL"


def _seed_rows(gains, base=(0.5, 0.7, 0.6), se=0.001):
    """Baseline and ATEX rows on seeds 0..m-1; ATEX = baseline + the seed's gain."""
    cells = []
    for seed, (g, b) in enumerate(zip(gains, base)):
        cells += [("none", 0.1, "m", b, se, 100, seed), ("atex", 0.1, "m", b + g, se, 100, seed)]
    return _rows(cells)


def test_several_seeds_give_a_seed_level_t_interval(tmp_path):
    _write(tmp_path, _seed_rows([0.05, 0.04, 0.06]))
    r = evaluate_claim(_claim(metric="m"), tmp_path)
    cell = r.cells[0]
    assert cell.estimate == pytest.approx(0.05) and "3 seeds" in cell.label
    # images' variance (2 x 0.001^2, not divided by m) + between-seed variance / 3, t with the
    # Welch-Satterthwaite df (a + b)^2 / (b^2 / 2)
    a, b = 2 * 0.001 ** 2, np.var([0.05, 0.04, 0.06], ddof=1) / 3
    from scipy.stats import t
    half = t.ppf(0.975, (a + b) ** 2 / (b * b / 2)) * math.sqrt(a + b)
    assert cell.high - cell.estimate == pytest.approx(half, rel=1e-5)
    assert r.verdict == "PASS"  # about [0.025, 0.075], above 0


def test_seeds_that_disagree_are_not_distinguishable_where_pooling_would_pass(tmp_path):
    """Per-seed standard errors are tiny, so pooling seeds as extra images would call the mean gain
    0.02 certain; the seeds themselves disagree in sign, and the seed-level interval says so."""
    _write(tmp_path, _seed_rows([0.05, 0.04, -0.03]))
    cell = evaluate_claim(_claim(metric="m"), tmp_path).cells[0]
    assert cell.estimate == pytest.approx(0.02)
    assert cell.low < 0 < cell.high and cell.verdict == "not distinguishable"
    growth = _claim(metric="m", test="growth", axis="budget", for_each=None)
    rows = pd.concat([_seed_rows([0.01, 0.01, 0.01]),
                      _seed_rows([0.05, 0.04, -0.03]).assign(budget=0.2)])
    _write(tmp_path, rows)
    cell = evaluate_claim(growth, tmp_path).cells[0]
    assert "budget 0.2 vs 0.1, 3 seeds" in cell.label and cell.verdict == "not distinguishable"


def test_arms_on_different_seeds_and_duplicates_within_a_seed_are_refused(tmp_path):
    rows = _rows([("none", 0.1, "m", 0.5, 0.01, 100, 0), ("none", 0.1, "m", 0.7, 0.01, 100, 1),
                  ("atex", 0.1, "m", 0.9, 0.01, 100, 0)])
    _write(tmp_path, rows)
    with pytest.raises(RobexError, match="same seeds"):
        evaluate_claim(_claim(metric="m"), tmp_path)
    rows.loc[1, "seed"] = 0
    _write(tmp_path, rows)
    with pytest.raises(RobexError, match="differ by more than the seed"):
        evaluate_claim(_claim(metric="m"), tmp_path)


@pytest.mark.parametrize("se_img,sd_seed", [(0.004, 0.01), (0.01, 0.004), (0.001, 0.02)])
def test_seed_interval_has_its_nominal_coverage_when_seeds_share_their_images(se_img, sd_seed):
    """Simulated: the true gain, plus an image-sampling error shared by every seed (the same test
    images), plus a training effect per seed; each seed reports the image standard error. Over 2000
    trials the 95% interval of 3 seeds covers the true gain 92-98% of the time, whether the seeds'
    spread or the images' dominates (binomial spread around 95%: +-1%). A plain t with 2 df would
    cover ~100% here, a normal interval on the pooled standard errors far less."""
    rng = np.random.default_rng(1)
    true, hits = 0.03, 0
    for _ in range(2000):
        est = true + rng.normal(0, se_img) + rng.normal(0, sd_seed, 3)
        _, low, high = seed_interval(est, np.full(3, se_img ** 2))
        hits += low <= true <= high
    assert 0.92 <= hits / 2000 <= 0.98, hits


def test_wilson_interval_closed_form_and_share_verdicts(tmp_path):
    low, high = wilson(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-4) and high == pytest.approx(0.9433, abs=1e-4)
    assert wilson(0, 20)[0] == pytest.approx(0.0, abs=1e-12)
    # 6 of 10 below the identity: more than half, but not distinguishable from a coin flip
    fig = pd.DataFrame({"metric": ["pcc"] * 10, "x": [1.0] * 10, "y": [0.0] * 6 + [2.0] * 4})
    _write(tmp_path, fig, name="figure.csv")
    claim = OmegaConf.create({"text": "t", "artifact": "art", "source": "figure.csv", "test": "share",
                              "where": {"metric": "pcc"}, "x": "x", "y": "y", "threshold": 0.5,
                              "expect": "greater"})
    assert evaluate_claim(claim, tmp_path).verdict == "NOT DISTINGUISHABLE"
    fig["y"] = [0.0] * 9 + [2.0]  # 9 of 10: Wilson [0.596, 0.982], above one half
    _write(tmp_path, fig, name="figure.csv")
    assert evaluate_claim(claim, tmp_path).verdict == "PASS"
    big = pd.DataFrame({"metric": ["pcc"] * 100, "x": [1.0] * 100, "y": [0.0] * 70 + [2.0] * 30})
    _write(tmp_path, big, name="figure.csv")
    assert evaluate_claim(claim, tmp_path).verdict == "PASS"
    big["y"] = [0.0] * 20 + [2.0] * 80
    _write(tmp_path, big, name="figure.csv")
    assert evaluate_claim(claim, tmp_path).verdict == "FAIL"


def test_a_mean_of_one_sample_has_no_interval_and_no_verdict(tmp_path):
    _write(tmp_path, _rows([("atex", 0.1, "spearman", 0.9, float("nan"), 1),
                            ("none", 0.1, "spearman", 0.1, 0.01, 100)]))
    r = evaluate_claim(_claim(), tmp_path)
    assert r.verdict == "NOT DISTINGUISHABLE"
    _write(tmp_path, _rows([("atex", 0.1, "spearman", 0.9, float("nan"), 50),
                            ("none", 0.1, "spearman", 0.1, 0.01, 100)]))
    with pytest.raises(RobexError, match="no standard error"):  # 50 samples and no se: a real gap
        evaluate_claim(_claim(), tmp_path)


def test_missing_artifact_is_missing_not_a_verdict(tmp_path):
    r = evaluate_claim(_claim(), tmp_path)
    assert r.verdict == "MISSING" and "not found" in r.note


def test_both_papers_claims_files_load_and_render_missing_without_results(tmp_path):
    for paper in ("atex", "aggmean", "smoothed", "relex"):
        spec = load_claims(paper)
        results = [evaluate_claim(c, tmp_path) for c in spec.claims]
        assert len(results) >= 6 and all(r.verdict == "MISSING" for r in results)
        text = render(spec, results)
        assert f"{len(results)} MISSING" in text and "95% confidence interval" in text
    with pytest.raises(RobexError, match="papers with claims: aggmean, atex, relex, smoothed"):
        load_claims("no_such_paper")


def test_a_row_without_a_defined_value_is_an_undefined_cell_that_blocks_a_pass(tmp_path):
    # MASK's maps are constant on every image: the job wrote spearman with n = 0 and no value, and
    # spearman__nan = 100 of 100; the cell says so instead of printing "nan [nan, nan]"
    nan = float("nan")
    rows = _rows([("none", 0.1, "spearman", 0.5, 0.01), ("atex", 0.1, "spearman", 0.6, 0.01),
                  ("none", 0.2, "spearman", nan, nan, 0), ("none", 0.2, "spearman__nan", 100.0, nan, 100),
                  ("atex", 0.2, "spearman", 0.6, 0.01)])
    _write(tmp_path, rows)
    r = evaluate_claim(_claim(), tmp_path)
    assert [c.verdict for c in r.cells] == ["holds", "undefined"] and r.verdict == "NOT DISTINGUISHABLE"
    assert "NaN on 100 of 100 samples" in r.cells[1].text(".3g") and "nan" not in r.cells[1].text(".3g")
    rows.loc[1, "value"] = 0.1  # a contradicted cell beside an undefined one still fails the claim
    _write(tmp_path, rows)
    assert evaluate_claim(_claim(), tmp_path).verdict == "FAIL"
    # a rate with a Wilson interval and no defined value is undefined too (not an error)
    _write(tmp_path, _rows([("none", 0.1, "retrieval", nan, nan, 0)]))
    claim = _claim(metric="retrieval", a={"defense": "none"}, b=None, threshold=0.9, interval="wilson")
    r = evaluate_claim(claim, tmp_path)
    assert r.verdict == "NOT DISTINGUISHABLE" and r.cells[0].verdict == "undefined"


def test_paired_bootstrap_covers_a_known_difference_and_excludes_zero_only_when_it_should():
    rng = np.random.default_rng(1)
    x = rng.normal(0.0, 1.0, 200)
    shifted = x - 0.3 + rng.normal(0.0, 0.2, 200)  # true mean difference -0.3
    est, low, high = paired_bootstrap(shifted - x)
    assert low < -0.3 < high and high < 0 and est == pytest.approx((shifted - x).mean())
    same = x + rng.normal(0.0, 0.2, 200)  # true mean difference 0
    _, low, high = paired_bootstrap(same - x)
    assert low < 0 < high
    # seeded: the same data give the same interval; one sample gives none; NaNs are left out
    assert paired_bootstrap(same - x) == paired_bootstrap(same - x)
    assert paired_bootstrap([0.4])[1:] == (-math.inf, math.inf)
    assert paired_bootstrap([0.1, float("nan"), 0.3])[0] == pytest.approx(0.2)


def test_paired_bootstrap_interval_has_its_nominal_coverage():
    # 300 data sets of 60 skewed differences with known mean 1 (exponential): the 95% interval
    # should cover it about 95% of the time (the percentile bootstrap runs a little short on skewed
    # small samples; a broken resampling, e.g. of the wrong axis or with the wrong quantiles, is far off)
    rng = np.random.default_rng(7)
    covered = 0
    for rep in range(300):
        d = rng.exponential(1.0, 60)
        _, low, high = paired_bootstrap(d, resamples=1000, seed=rep)
        covered += low <= 1.0 <= high
    assert 0.89 <= covered / 300 <= 0.98


def test_a_paired_claim_sees_a_shift_that_the_independent_arms_interval_cannot(tmp_path):
    # y is x minus 0.05 on every sample, and the samples spread widely: the per-sample difference is
    # clear, while the means' independent intervals (se 0.1 each) overlap
    rng = np.random.default_rng(3)
    x = rng.normal(0.5, 1.0, 100)
    y = x - 0.05 + rng.normal(0.0, 0.02, 100)
    _write(tmp_path, pd.DataFrame({"metric": "pcc", "x": x, "y": y}), name="figure.csv")
    claim = OmegaConf.create({"text": "t", "artifact": "art", "source": "figure.csv", "test": "paired",
                              "where": {"metric": "pcc"}, "group_by": ["metric"], "x": "x", "y": "y",
                              "expect": "less"})
    r = evaluate_claim(claim, tmp_path)
    assert r.verdict == "PASS" and r.cells[0].high < 0 and "(n=100)" in r.cells[0].label
    claim.expect = "greater"
    assert evaluate_claim(claim, tmp_path).verdict == "FAIL"
    se = lambda v: v.std(ddof=1) / math.sqrt(len(v))  # noqa: E731
    _write(tmp_path, _rows([("agg", 0.1, "pcc", y.mean(), se(y)), ("single", 0.1, "pcc", x.mean(), se(x))]))
    independent = _claim(metric="pcc", a={"defense": "agg"}, b={"defense": "single"}, expect="less")
    assert evaluate_claim(independent, tmp_path).verdict == "NOT DISTINGUISHABLE"
    # no finite pair: undefined, never a pass
    _write(tmp_path, pd.DataFrame({"metric": "pcc", "x": [float("nan")] * 3, "y": [0.0] * 3}), name="figure.csv")
    claim.expect = "less"
    r = evaluate_claim(claim, tmp_path)
    assert r.verdict == "NOT DISTINGUISHABLE" and r.cells[0].verdict == "undefined"


def _rows_with_samples(tmp_path, arms, artifact="art"):
    """Write results/<artifact>/{metrics.csv, samples.npz} the way a sweep does: one job folder per
    arm (robex/report/samples.py: collect). arms: list of (defense, budget, seed, values or None);
    an arm with values None kept no samples."""
    from robex.report.samples import collect
    from robex.utils import atomic_write_npz

    sweep, frames = tmp_path / "sweep", []
    for j, (defense, budget, seed, values) in enumerate(arms):
        v = np.asarray(values if values is not None else [0.5, 0.5], dtype=float)
        row = _rows([(defense, budget, "spearman", float(np.nanmean(v)),
                      float(np.nanstd(v, ddof=1) / math.sqrt(np.isfinite(v).sum())), len(v), seed)])
        job = sweep / str(j)
        job.mkdir(parents=True)
        conform(row).to_csv(job / "metrics.csv", index=False)
        if values is not None:
            atomic_write_npz(job / "samples.npz", {"r0": v.astype(np.float32)})
        frames.append(row)
    _write(tmp_path, pd.concat(frames, ignore_index=True), artifact)
    collect(sweep, tmp_path / artifact)


def test_table_rows_that_kept_their_images_are_paired_by_a_bootstrap_over_images(tmp_path):
    """ATEX and the baseline scored on the same 400 images: every image moves by +0.02 while the
    images spread by 0.3. Independent arms cannot tell (se 0.015 each); the paired cell can, and it
    says so in its label; with no shift it stays not distinguishable."""
    rng = np.random.default_rng(5)
    base = rng.normal(0.5, 0.3, 400)
    shifted = base + 0.02 + rng.normal(0.0, 0.01, 400)
    _rows_with_samples(tmp_path, [("none", 0.1, 0, base), ("atex", 0.1, 0, shifted)])
    r = evaluate_claim(_claim(), tmp_path)
    cell = r.cells[0]
    assert r.verdict == "PASS" and "paired bootstrap over 400 images" in cell.label
    assert cell.estimate == pytest.approx(float(np.mean(shifted.astype(np.float32) - base.astype(np.float32))), abs=1e-6)
    assert cell.low < 0.02 < cell.high and cell.high - cell.low < 0.005
    noise = rng.normal(0.0, 0.01, 400)
    same = base + noise - noise.mean()  # no shift at all
    _rows_with_samples(tmp_path / "b", [("none", 0.1, 0, base), ("atex", 0.1, 0, same)])
    assert evaluate_claim(_claim(), tmp_path / "b").verdict == "NOT DISTINGUISHABLE"
    # an arm without samples, or samples on other images (another count): the independent interval
    for other in (None, shifted[:300]):
        _rows_with_samples(tmp_path / f"c{other is None}", [("none", 0.1, 0, base), ("atex", 0.1, 0, other)])
        r = evaluate_claim(_claim(), tmp_path / f"c{other is None}")
        assert "paired" not in r.cells[0].label
    r = evaluate_claim(_claim(), tmp_path / "cFalse")
    assert r.verdict == "NOT DISTINGUISHABLE"  # the same shift, unpaired: the images' spread hides it


def test_a_growth_cell_pairs_the_per_image_double_difference(tmp_path):
    rng = np.random.default_rng(6)
    arms, d = [], np.zeros(300)
    for eps, gain in ((0.02, 0.01), (0.08, 0.04)):
        base = rng.normal(0.5, 0.3, 300).astype(np.float32)
        atex = (base + gain + rng.normal(0.0, 0.01, 300)).astype(np.float32)
        arms += [("none", eps, 0, base), ("atex", eps, 0, atex)]
        d = d + (1 if eps == 0.08 else -1) * (atex.astype(float) - base)
    _rows_with_samples(tmp_path, arms)
    claim = _claim(test="growth", axis="budget", for_each=None)
    r = evaluate_claim(claim, tmp_path)
    assert r.verdict == "PASS" and "paired bootstrap over 300 images" in r.cells[0].label
    assert r.cells[0].estimate == pytest.approx(d.mean(), abs=1e-6)


def test_seeds_pair_within_each_seed_or_not_at_all(tmp_path):
    rng = np.random.default_rng(8)
    arms = []
    for seed, gain in ((0, 0.02), (1, 0.03), (2, 0.025)):
        base = rng.normal(0.5, 0.3, 200)
        arms += [("none", 0.1, seed, base), ("atex", 0.1, seed, base + gain + rng.normal(0.0, 0.01, 200))]
    _rows_with_samples(tmp_path, arms)
    r = evaluate_claim(_claim(), tmp_path)
    assert r.verdict == "PASS" and r.cells[0].label.endswith("3 seeds, paired over 200 images")
    # per-seed paired estimates and variances enter the seed-level interval
    per = [(a[3] - b[3]) for b, a in zip(arms[::2], arms[1::2])]
    est, low, high = seed_interval([p.astype(np.float32).mean() for p in per],
                                   [np.var(p.astype(np.float32), ddof=1) / len(p) for p in per])
    assert (r.cells[0].estimate, r.cells[0].low, r.cells[0].high) == pytest.approx((est, low, high), abs=1e-5)
    arms[-1] = ("atex", 0.1, 2, None)  # one seed without samples: no seed is paired
    _rows_with_samples(tmp_path / "b", arms)
    r = evaluate_claim(_claim(), tmp_path / "b")
    assert r.cells[0].label.endswith("3 seeds")


def test_a_claim_text_with_bars_stays_inside_its_table_cell(tmp_path):
    _write(tmp_path, _rows([("none", 0.1, "accuracy", 0.88, 0.003), ("atex", 0.1, "accuracy", 0.879, 0.003)]))
    claim = _claim(text="accuracy changes little (|ATEX - baseline| <= 0.02)", test="within", tolerance=0.02,
                   metric="accuracy")
    spec = OmegaConf.create({"title": "T", "intro": "i", "paper": "atex"})
    row = [l for l in render(spec, [evaluate_claim(claim, tmp_path)]).splitlines() if l.startswith("| accuracy")][0]
    cells = [c for c in re.split(r"(?<!\\)\|", row)[1:-1]]
    assert len(cells) == 3 and cells[1].strip() == "PASS" and "\\|ATEX - baseline\\|" in cells[0]
