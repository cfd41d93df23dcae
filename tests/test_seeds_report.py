"""The seeds report (robex/report/seeds.py): each seed's gain is its own defended minus baseline
value, the summary's interval is the claims engine's seed-level interval, and the paper's gain is
read from the table preset, not typed in."""
import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from robex.errors import RobexError
from robex.report.claims import seed_interval
from robex.report.schema import conform
from robex.report.seeds import paper_gains, render_seeds

PAPER = OmegaConf.create({
    "title": "seeds test", "attacks": ["manip_untargeted_paper", "manip_targeted_paper"],
    "metrics": ["spearman", "topk"],
    "reported_from": {"manip_untargeted_paper": "atex_tab1", "manip_targeted_paper": "atex_tab2"}})


def _rows(drop=None):
    rng = np.random.default_rng(0)
    recs = []
    for attack in PAPER.attacks:
        for metric in PAPER.metrics:
            for budget in (0.02, 0.04, 0.08):
                for seed in (0, 1, 2):
                    base = rng.uniform(0.4, 0.7)
                    for defense, value in (("none", base), ("atex", base + budget + 0.01 * seed)):
                        if drop == (attack, metric, budget, seed, defense):
                            continue
                        recs.append({"dataset": "fashion_mnist", "attack": attack, "defense": defense,
                                     "budget": budget, "seed": seed, "metric": metric, "value": value,
                                     "se": 0.005, "n": 1000, "step": 0, "explainer": "gradient",
                                     "source": "FashionMNIST"})
                if metric == "spearman":  # accuracy rows are over the whole test set
                    recs.append(dict(recs[-1], metric="accuracy", value=0.88, se=float("nan"), n=10000))
    return conform(pd.DataFrame(recs))


def test_gains_per_seed_and_their_seed_level_interval(tmp_path):
    render_seeds(_rows(), PAPER, tmp_path)
    table = pd.read_csv(tmp_path / "table.csv")
    per_seed = pd.read_csv(tmp_path / "figure.csv")
    assert len(table) == 2 * 2 * 3 and set(table["seeds"]) == {3}
    cell = table[(table.attack == "manip_targeted_paper") & (table.metric == "topk") & (table.budget == 0.04)].iloc[0]
    gains = [0.04 + 0.01 * s for s in (0, 1, 2)]
    mean, low, high = seed_interval(gains, [2 * 0.005 ** 2] * 3)
    assert (cell.gain_mean, cell.gain_low, cell.gain_high) == pytest.approx((mean, low, high))
    assert sorted(per_seed[(per_seed.metric == "topk") & (per_seed.budget == 0.04)
                           & (per_seed.attack == "manip_targeted_paper")]["gain"]) == pytest.approx(gains)
    # the paper's gain comes from atex_tab2's reported row at eps 0.04: 0.681 - 0.577
    assert cell.paper_gain == pytest.approx(0.681 - 0.577)
    assert paper_gains("atex_tab1", "spearman")[0.08] == pytest.approx(0.686 - 0.536)
    assert (tmp_path / "figure.png").stat().st_size > 10_000
    md = (tmp_path / "table.md").read_text()
    assert "| manip_targeted_paper | topk | 0.04 |" in md and "the first 1000 test images" in md


def test_a_missing_arm_is_an_error_not_a_gain(tmp_path):
    with pytest.raises(RobexError, match="defense none; expected one"):
        render_seeds(_rows(drop=("manip_untargeted_paper", "topk", 0.08, 1, "none")), PAPER, tmp_path)
