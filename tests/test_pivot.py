"""The one table renderer (robex/report/pivot.py): the preset's layout, paper beside robex, seeds
averaged, a missing paper value '-', a value robex could not compute 'n/a', a standard error shown
only when known, one table.csv schema."""
import pandas as pd
import pytest
from omegaconf import OmegaConf

from robex.report.pivot import TIDY_COLUMNS, render_pivot, render_unavailable


def _rows():
    base = dict(dataset="d", source="src", model="m", n=10, se=0.01)
    rows = [dict(base, explainer="gradient", attacked_explainer="gradient", metric="pcc", seed=0, value=0.2),
            dict(base, explainer="gradient", attacked_explainer="gradient", metric="pcc", seed=1, value=0.4),
            dict(base, explainer="lrp", attacked_explainer="lrp", metric="pcc", seed=0, value=0.7, se=float("nan")),
            # scored on an explainer that was not the attacked one: the 'attacked' filter drops it
            dict(base, explainer="lrp", attacked_explainer="gradient", metric="pcc", seed=0, value=99.0)]
    return pd.DataFrame(rows)


def _paper(columns):
    return OmegaConf.create({
        "title": "T", "reported": [{"method": "gradient", "pcc": 0.74}, {"method": "lrp"},
                                   {"method": "integrated_gradients", "pcc": 0.82}],
        "table": {"rows": {"column": "explainer", "reported_key": "method", "header": "method"},
                  "keep": "attacked", "labels": {"gradient": "SM"},
                  "intro": "# {title}\n\n{models} on {source}, {n[pcc]} pairs.\n\n", "columns": columns}})


def test_the_table_follows_the_preset_and_marks_what_is_missing(tmp_path):
    columns = {"pcc": {"header": "PCC (paper / robex)", "paper": "pcc", "se": " ± {robex_se:.3f}",
                       "values": {"robex": {"metric": "pcc"}}}}
    tidy = render_pivot(_rows(), _paper(columns), tmp_path)
    md = (tmp_path / "table.md").read_text().splitlines()
    assert md[:3] == ["# T", "", "m on src, 10 pairs."]
    assert md[4:] == ["| method | PCC (paper / robex) |", "|---|---|",
                      "| SM | 0.740 / 0.300 ± 0.100 |",  # two seeds: mean 0.3, se sqrt(0.01^2 + 0.02 / 2)
                      "| lrp | - / 0.700 |",  # no paper value, no known se: no ± part
                      "| integrated_gradients | 0.820 / n/a |"]  # no rows: n/a, never a number
    csv = pd.read_csv(tmp_path / "table.csv")
    assert list(csv.columns) == TIDY_COLUMNS and len(csv) == len(tidy) == 3
    assert csv.loc[0, "n"] == 20 and csv.loc[0, "paper"] == 0.74 and csv.loc[0, "robex"] == pytest.approx(0.3)
    assert csv["status"].tolist() == ["computed", "computed", "missing"]


def test_a_cell_can_combine_several_values(tmp_path):
    columns = [{"header": "SM / LRP", "cell": "{a:.1f} / {b:.1f}",
                "values": {"a": {"metric": "pcc", "where": {"explainer": "gradient"}},
                           "b": {"metric": "pcc", "where": {"explainer": "lrp"}}}}]
    paper = _paper(columns)
    paper.table.rows = {"column": "dataset", "reported_key": "data", "header": "data"}
    paper.reported = [{"data": "d"}]
    render_pivot(_rows(), paper, tmp_path)
    assert (tmp_path / "table.md").read_text().splitlines()[-1] == "| d | 0.3 / 0.7 |"


def test_an_unavailable_table_keeps_the_layout_and_never_prints_a_number(tmp_path):
    columns = {"pcc": {"header": "PCC (paper / robex)", "paper": "pcc", "se": " ± {robex_se:.3f}",
                       "values": {"robex": {"metric": "pcc"}}}}
    paper = _paper(columns)
    paper.unavailable = "needs the benchmark at dataset.root"
    render_unavailable(None, paper, tmp_path)
    md = (tmp_path / "table.md").read_text()
    assert "**Not reproduced here: needs the benchmark at dataset.root**" in md
    assert md.splitlines()[-3:] == ["| SM | 0.740 / unavailable |", "| lrp | - / unavailable |",
                                    "| integrated_gradients | 0.820 / unavailable |"]
    csv = pd.read_csv(tmp_path / "table.csv")
    assert set(csv["status"]) == {"unavailable"} and csv["robex"].isna().all() and (csv["n"] == 0).all()


def test_aggmean_table2_layout_puts_each_model_in_its_column(tmp_path):
    from pathlib import Path

    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(Path(__file__).resolve().parents[1] / "conf"), version_base=None):
        paper = compose("config", overrides=["paper=aggmean_tab2"]).paper
    base = dict(dataset="ann", source="bench", n=50, se=0.01, metric="cosine_similarity", seed=0,
                attacked_explainer="")
    rows = pd.DataFrame([dict(base, explainer="agg_mean", model="resnet101", value=0.61),
                         dict(base, explainer="agg_mean", model="vgg19", value=0.55),
                         dict(base, explainer="gradient", model="resnet50", value=0.40)])
    render_pivot(rows, paper, tmp_path)
    lines = (tmp_path / "table.md").read_text().splitlines()
    assert lines[2] == "Data: bench."
    assert "| AGG-Mean | 0.63 / 0.61 | 0.66 / n/a | 0.64 / 0.55 |" in lines
    assert "| SM | 0.45 / n/a | 0.45 / 0.40 | 0.47 / n/a |" in lines
